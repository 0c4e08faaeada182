import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { auditDatabaseOf, AuditWriter, logRetention, RefusalBudget, TableAuditWriter, type AuditLog } from '../audit/index.ts';
import type { KeywayMetrics } from '../metrics/index.ts';
import type { Services } from '../services.ts';

/**
 * The audit writer audit.sink names, behind the refusal budget: refusals past their budgets are
 * folded into summary lines (audit/refusal-budget.ts), and closing it writes the summaries still
 * pending, then closes the writer.
 */
export async function openAudit(services: Services, env: NodeJS.ProcessEnv, metrics: KeywayMetrics, logger: Logger): Promise<RefusalBudget> {
  const { audit } = services.config;
  return new RefusalBudget(await openAuditLog(services, env, metrics, logger), { budget: audit.refusal_budget, intervalMs: audit.refusal_interval });
}

/** The hash-chained file (default), or this replica's chain in the store's database. */
async function openAuditLog(services: Services, env: NodeJS.ProcessEnv, metrics: KeywayMetrics, logger: Logger): Promise<AuditLog> {
  const { config, paths } = services;
  const replica = config.audit.replica ?? (config.store.backend === 'postgres' ? hostname() : undefined);
  const onBatch = (seconds: number, ok: boolean) => metrics.auditBatch(seconds, ok);
  const db = auditDatabaseOf(config, env);
  if (db !== null) return TableAuditWriter.open({ ...db, replica: replica ?? hostname(), headKey: services.auditHeadKey, onBatch });
  return AuditWriter.open({
    path: paths.audit,
    headPath: paths.auditHead,
    headKey: services.auditHeadKey,
    maxBytes: config.audit.max_bytes,
    keep: config.audit.keep,
    minRetentionMs: config.audit.min_retention,
    // Files past keep that min_retention keeps: someone should look (a flood of lines, or keep and
    // max_bytes too small for the traffic) before the disk fills.
    onRetention: logRetention(logger, config.audit.keep, config.audit.min_retention),
    // Rotation failing leaves one file growing: say so once when it starts and once when it ends.
    onRotationError: (err) =>
      err === null
        ? logger.info('audit rotation works again')
        : logger.warn({ code: (err as NodeJS.ErrnoException).code ?? 'error' }, 'audit rotation fails; lines are still written, to one growing file'),
    onBatch,
    replica,
  });
}
