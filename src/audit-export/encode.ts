// A line as the bytes a target sends: its format, bounded to what its transport carries, framed.

import type { ExportFormat } from '../config/schema/audit-export.ts';
import type { AuditLine } from '../audit/record.ts';
import { toCef } from './cef.ts';
import { exportedLine } from './fields.ts';
import { toOcsf } from './ocsf.ts';
import { STREAM_LIMIT, UDP_LIMIT, cefInSyslog, octetCounted, toSyslog } from './syslog.ts';

export type Wire = 'stream' | 'datagram' | 'https';

export function wireOf(to: string): Wire {
  const scheme = new URL(to).protocol;
  return scheme === 'https:' ? 'https' : scheme === 'syslog+udp:' ? 'datagram' : 'stream';
}

/** The bytes one line becomes for a target. */
export function encodeLine(line: AuditLine, format: ExportFormat, wire: Wire, version: string): Buffer {
  const fields = exportedLine(line);
  if (format === 'ocsf') return Buffer.from(JSON.stringify(toOcsf(fields, version)), 'utf8');
  const limit = wire === 'datagram' ? UDP_LIMIT : STREAM_LIMIT;
  let message: string;
  if (format === 'syslog') message = toSyslog(fields, limit);
  else {
    // The syslog header comes first; the CEF record gets what is left.
    const head = cefInSyslog(fields, '');
    message = cefInSyslog(fields, toCef(fields, version, limit - Buffer.byteLength(head)));
  }
  return wire === 'stream' ? octetCounted(message) : Buffer.from(message, 'utf8');
}
