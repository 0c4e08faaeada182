// audit.export: every target of the config, each with its own cursor and sender (exporter.ts).

import { readFile } from 'node:fs/promises';
import type { ExportTargetConfig } from '../config/schema/audit-export.ts';
import { KeywayError } from '../errors/index.ts';
import { headerValues, type ReadSecret } from './headers.ts';
import { TargetExporter, type ExportLog, type ExportStatus } from './exporter.ts';

export type { ExportStatus } from './exporter.ts';
export { OCSF_VERSION } from './ocsf.ts';

export interface AuditExport {
  status(): ExportStatus[];
  stop(): Promise<void>;
}

export interface AuditExportOptions {
  targets: readonly ExportTargetConfig[];
  /** A target's ca: resolved against the home. */
  resolvePath: (path: string) => string;
  auditPath: string;
  dataDir: string;
  /** For the headers' secret references (env:NAME, file:PATH relative to the home). */
  readSecret: ReadSecret;
  version: string;
  log: ExportLog;
  pollMs?: number;
  batch?: number;
}

/** Starts a sender per target; none when the config has none. */
export async function startAuditExport(options: AuditExportOptions): Promise<AuditExport> {
  const exporters: TargetExporter[] = [];
  const stop = async () => {
    await Promise.all(exporters.map((e) => e.stop()));
  };
  try {
    for (const [i, target] of options.targets.entries()) {
      const caPem = target.ca === undefined ? undefined : await readCa(options.resolvePath(target.ca), i);
      const headers = target.headers === undefined ? undefined : headerValues(target.headers, options.readSecret);
      const exporter = new TargetExporter({ ...options, target, index: i, caPem, headers });
      await exporter.start();
      exporters.push(exporter);
    }
  } catch (err) {
    // Start is all or nothing: the targets started so far stop (their locks given back).
    await stop();
    throw err;
  }
  return { status: () => exporters.map((e) => e.status), stop };
}

async function readCa(path: string, index: number): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new KeywayError('config_invalid', `audit.export[${index}].ca: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: err,
    });
  }
}
