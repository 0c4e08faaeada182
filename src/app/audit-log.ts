import { appendToFile, CheckpointSigner, checkpointsPathFor, type CheckpointSignerOptions } from '../audit/checkpoints/signer.ts';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { auditDatabaseOf, AuditWriter, logRetention, RefusalBudget, TableAuditWriter, type AuditLog } from '../audit/index.ts';
import { AuditFailureLog } from '../audit/failure-log.ts';
import type { SettledLog } from '../audit/file/log-files.ts';
import { openFindings } from '../audit/open-findings.ts';
import type { AuditEvent } from '../audit/record.ts';
import type { KeywayMetrics } from '../observability/metrics/index.ts';
import type { Services } from '../open-home.ts';
import type { Config } from '../config/index.ts';
import { writeOwedChangeLines } from './owed-change-lines.ts';
import { writeOwedKeyLines } from './owed-key-lines.ts';
import { fileHasLine, type LineFinder, tableHasLine } from '../audit/read/find-ids.ts';

/**
 * The audit writer audit.sink names, behind the refusal budget: refusals past their budgets are
 * folded into summary lines (audit/refusal-budget.ts), and closing it writes the summaries still
 * pending, then closes the writer.
 */
export async function openAudit(
  services: Services,
  env: NodeJS.ProcessEnv,
  metrics: KeywayMetrics,
  logger: Logger,
  refusalsElsewhere?: (event: AuditEvent) => boolean,
  primaryLog?: (replica: string | undefined) => AuditLog,
): Promise<RefusalBudget> {
  const { audit } = services.config;
  // A worker on the file sink hands its lines to the primary, the file's one writer (workers/shared-audit.ts).
  const log =
    primaryLog !== undefined && auditDatabaseOf(services.config, env) === null
      ? primaryLog(auditReplicaOf(services.config))
      : await openAuditLog(services, env, {
          onBatch: (seconds, ok) => metrics.auditBatch(seconds, ok),
          logger,
        });
  return new RefusalBudget(log, { budget: audit.refusal_budget, intervalMs: audit.refusal_interval, elsewhere: refusalsElsewhere });
}

export interface OpenAuditLogOptions {
  /** Hears how long each batch took to append and whether it reached the log. */
  onBatch?: ((seconds: number, ok: boolean) => void) | undefined;
  /**
   * Where rotation and retention warnings go, what was found of the log at open, and failing writes
   * (at a bounded rate: audit/failure-log.ts); without one they are not reported (a one-shot CLI write).
   */
  logger?: Pick<Logger, 'info' | 'warn' | 'error'> | undefined;
  /**
   * The chain to write in the database (audit.sink postgres), instead of this replica's: a chain's
   * writer holds its lock for as long as it runs, so a command-line write beside a running proxy
   * needs a chain of its own (cli/audit-change.ts).
   */
  tableChain?: string | undefined;
}

/**
 * The audit log, with the lines key changes left owed written first (owed-key-lines.ts: a rotation
 * finished at the last open, a key command killed before its line), then those of changes cut
 * short before their line (owed-change-lines.ts). A keyway that cannot write them
 * says so and starts (they stay owed); a command fails as for any line it cannot write.
 */
export async function openAuditLog(services: Services, env: NodeJS.ProcessEnv, options: OpenAuditLogOptions = {}): Promise<AuditLog> {
  const log = await openLog(services, env, options);
  try {
    const inLog = lineFinder(services, env);
    await writeOwedKeyLines(log, services.paths.dataDir, inLog);
    await writeOwedChangeLines(log, services.store, inLog);
  } catch (err) {
    if (options.logger === undefined) {
      await log.close().catch(() => undefined);
      throw err;
    }
    options.logger.warn(
      { code: (err as NodeJS.ErrnoException).code ?? 'error' },
      'an audit line a key change or a change cut short owes could not be written; the next start tries again',
    );
  }
  return log;
}

/** Where an owed line an earlier writer tried is looked for (a key change's, a change's): the table audit.sink names, else the file. */
function lineFinder(services: Services, env: NodeJS.ProcessEnv): LineFinder {
  const db = auditDatabaseOf(services.config, env);
  return db !== null ? (ids) => tableHasLine(db, ids) : (ids, since) => fileHasLine(services.paths.audit, ids, since);
}

/** The `replica` each line names: audit.replica, else the host's name where replicas share a PostgreSQL store. */
export function auditReplicaOf(config: Config): string | undefined {
  return config.audit.replica ?? (config.store.backend === 'postgres' ? hostname() : undefined);
}

/** The hash-chained file (default), or a chain in the store's database. */
async function openLog(services: Services, env: NodeJS.ProcessEnv, options: OpenAuditLogOptions): Promise<AuditLog> {
  const { config, paths } = services;
  const { logger, onBatch } = options;
  const replica = auditReplicaOf(config);
  const db = auditDatabaseOf(config, env);
  const signer = (store: CheckpointSignerOptions['store'], chain: string | undefined) =>
    new CheckpointSigner({
      store,
      key: services.checkpointKey,
      intervalMs: config.audit.checkpoint_interval,
      replica: chain,
      onError: (err) =>
        logger?.warn({ code: (err as NodeJS.ErrnoException).code ?? 'error' }, 'an audit checkpoint could not be written; the next one will try again'),
    });
  // One error when writes start failing, a count per interval, one line when they work again.
  const failures = logger === undefined ? undefined : new AuditFailureLog(logger);
  if (db !== null) {
    const chain = options.tableChain ?? replica ?? hostname();
    // Each replica's chain signed on its own (its checkpoints name it), kept in keyway_audit_checkpoint.
    return TableAuditWriter.open({
      ...db,
      replica: chain,
      headKey: services.auditHeadKey,
      onBatch,
      failures,
      checkpoints: (store) => signer(store, chain),
    });
  }
  let found: SettledLog | Error | undefined;
  const writer = await AuditWriter.open({
    path: paths.audit,
    headPath: paths.auditHead,
    headKey: services.auditHeadKey,
    maxBytes: config.audit.max_bytes,
    keep: config.audit.keep,
    minRetentionMs: config.audit.min_retention,
    // Files past keep that min_retention keeps: someone should look (a flood of lines, or keep and
    // max_bytes too small for the traffic) before the disk fills.
    onRetention: logger === undefined ? undefined : logRetention(logger, config.audit.keep, config.audit.min_retention),
    // Rotation failing leaves one file growing: say so once when it starts and once when it ends.
    onRotationError: (err) => {
      if (logger === undefined) return;
      if (err === null) logger.info('audit rotation works again');
      else logger.warn({ code: (err as NodeJS.ErrnoException).code ?? 'error' }, 'audit rotation fails; lines are still written, to one growing file');
    },
    onBatch,
    replica,
    // Signed checkpoints of the chain, which anyone with the public key can verify (`keyway audit public-key`).
    checkpoints: signer(appendToFile(checkpointsPathFor(paths.audit)), replica),
    failures,
    onOpen: (settled) => {
      found = settled;
    },
    // A torn line found later, under a batch: a sibling process (a worker, the CLI) killed mid-append.
    onRecovered: (recovered) =>
      logger?.warn(
        { file: recovered.file, offset: recovered.offset, bytes: recovered.bytes },
        'the audit log ended in a line cut short by a crash: it was kept aside and recorded',
      ),
  });
  // A log that lost lines or its head file gets a line saying so, the first after the gap.
  for (const event of found === undefined ? [] : openFindings(found, logger)) {
    await writer.write(event).catch(() => undefined);
  }
  return writer;
}
