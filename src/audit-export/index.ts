// audit.export: every target of the config, each with its own cursor and sender (exporter.ts).

import { readFile } from 'node:fs/promises';
import type { ExportTargetConfig } from '../config/schema/audit-export.ts';
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
  version: string;
  log: ExportLog;
  pollMs?: number;
  batch?: number;
}

/** Starts a sender per target; none when the config has none. */
export async function startAuditExport(options: AuditExportOptions): Promise<AuditExport> {
  const exporters: TargetExporter[] = [];
  for (const target of options.targets) {
    const caPem = target.ca === undefined ? undefined : await readFile(options.resolvePath(target.ca), 'utf8');
    const exporter = new TargetExporter({ ...options, target, caPem });
    await exporter.start();
    exporters.push(exporter);
  }
  return {
    status: () => exporters.map((e) => e.status),
    stop: async () => {
      await Promise.all(exporters.map((e) => e.stop()));
    },
  };
}
