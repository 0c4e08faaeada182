// RFC 5424 syslog messages, and their framing: RFC 6587 octet counting (`LEN SP MSG`) on TCP and
// TLS (RFC 5425), one message per datagram on UDP (RFC 5426). The `syslog` format puts the line's
// allow-listed fields in one structured-data element, `keyway@32473` (32473 is the enterprise
// number RFC 5612 reserves for documentation: keyway has none of its own), and a short text as
// MSG; the `cef` format sends the CEF record as MSG with no structured data. Facility 13 (log audit).

import { hostname } from 'node:os';
import type { ExportedLine } from './fields.ts';
import { fitted, withoutControls } from './text.ts';

export const SD_ID = 'keyway@32473';
const FACILITY = 13;

/** Syslog severities: 3 error, 4 warning, 5 notice, 6 informational. */
const SEVERITY: Record<string, number> = { error: 3, deny: 4, admin: 5, approval: 5 };

/** The largest message sent: RFC 5426 asks receivers to take 2048 octets over UDP; TCP and TLS get 8 KiB. */
export const UDP_LIMIT = 2048;
export const STREAM_LIMIT = 8192;

/** A PARAM-VALUE: `"`, `\` and `]` escaped with `\` (RFC 5424 6.3.3); control characters replaced. */
export function escapeSdValue(text: string): string {
  return withoutControls(text.replace(/["\\\]]/g, (c) => `\\${c}`));
}

/** HOSTNAME: printable US-ASCII, 255 at most, or the nil value. */
function ownHostname(): string {
  const name = hostname()
    .replace(/[^\x21-\x7e]/g, '')
    .slice(0, 255);
  return name === '' ? '-' : name;
}

function header(line: ExportedLine, msgId: string): string {
  const pri = FACILITY * 8 + (SEVERITY[line.decision] ?? 6);
  const ts = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z$/.test(line.ts) ? line.ts : '-';
  return `<${pri}>1 ${ts} ${ownHostname()} keyway - ${msgId}`;
}

/** The `syslog` format: the fields as structured data, a one-line summary as MSG. */
export function toSyslog(line: ExportedLine, limit: number): string {
  return fitted(line.path, limit, (path, cut) => {
    const params: Array<[string, string | number | null | undefined]> = [
      ['seq', line.seq],
      ['hash', line.hash],
      ['id', line.id],
      ['decision', line.decision],
      ['code', line.code],
      ['agent', line.agent],
      ['grant', line.grant],
      ['method', line.method],
      ['host', line.host],
      ['port', line.port],
      ['path', path],
      ['path_cut', cut ? 'true' : null],
      ['status', line.status],
      ['duration_ms', line.duration_ms],
      ['client', line.client],
      ['rule', line.rule],
      ['action', line.action],
      ['actor', line.actor],
      ['chain', line.chain?.join(',')],
      ['phase', line.phase],
      ['approval', line.approval],
      ['approval_id', line.approval_id],
      ['approval_by', line.approval_by],
      ['signal', line.signal?.map((s) => s.name).join(',')],
      ['signal_why', line.signal?.map((s) => `${s.name}: ${s.why}`).join('; ')],
      ['policy', line.policy],
      ['policy_mode', line.policy_mode],
      ['repeated', line.repeated],
      ['replica', line.replica],
    ];
    const sd = params
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}="${escapeSdValue(String(v))}"`)
      .join(' ');
    const target = line.method === null ? line.host : `${line.method} ${line.host}:${line.port}${path ?? ''}`;
    const msg = withoutControls(`${line.decision}${line.code ? ` ${line.code}` : ''} ${target}${line.status === null ? '' : ` ${line.status}`}`);
    return `${header(line, msgIdOf(line))} [${SD_ID} ${sd}] ${msg}`;
  });
}

/** The `cef` format over syslog: the CEF record as MSG. */
export function cefInSyslog(line: ExportedLine, cef: string): string {
  return `${header(line, 'CEF')} - ${cef}`;
}

/** MSGID: the decision (printable US-ASCII, 32 at most). */
function msgIdOf(line: ExportedLine): string {
  return line.decision.replace(/[^\x21-\x7e]/g, '').slice(0, 32) || '-';
}

/** RFC 6587 octet counting: the message's length in bytes, a space, the message. */
export function octetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}
