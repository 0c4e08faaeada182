import { dirname } from 'node:path';
import { unknownSubcommand } from '../did-you-mean.ts';
import {
  auditDatabaseOf,
  linesPerRequest,
  parseAuditFilter,
  readAudit,
  readAuditTable,
  tailAudit,
  tailAuditTable,
  verifyAudit,
  verifyAuditTable,
  type AuditLine,
  type TableVerifyResult,
} from '../../audit/index.ts';
import { keywayPaths } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor, servicesFor } from '../context.ts';
import { emptyAuditLog, missingAuditLog, reportFile } from './audit-verify.ts';
import { exportEvidence, printPublicKey, verifyWithoutMasterKey } from './audit-evidence.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';

function printLine(io: CommandIO, line: AuditLine, json: boolean): void {
  if (json) {
    io.out(JSON.stringify(line));
    return;
  }
  const who = `${line.agent ?? '-'}${line.grant ? `/${line.grant}` : ''}`;
  // An admin line is an operator's change: what was done, and through which door (a route, a signal).
  const what =
    line.decision === 'admin'
      ? `${line.action ?? 'admin'} (${line.method === null ? line.client : `${line.method} ${line.path ?? ''} from ${line.client}`}${line.actor && line.actor !== line.client ? `, by ${line.actor}` : ''})`
      : `${line.method ?? '-'} ${line.host}:${line.port}${line.path ?? ''}`;
  io.out(
    `${line.ts}  ${line.decision.padEnd(6)} ${String(line.status ?? '-').padEnd(3)} ${who}  ${what}${line.code ? `  [${line.code}]` : ''}  ${line.duration_ms}ms`,
  );
  // A refusal says why and what to do, as the agent was told (lines written before keyway kept
  // these fields have only the code).
  if (typeof line.message === 'string') io.out(`    ${oneLine(line.message)}`);
  if (typeof line.hint === 'string') io.out(`    hint: ${oneLine(line.hint)}`);
  if (typeof line.changed === 'string') io.out(`    changed: ${oneLine(line.changed)}`);
  // A request a rule sent to a person: which approval, what became of it, and who answered.
  const approval = line.approval;
  if (approval && typeof approval === 'object' && typeof approval.id === 'string') {
    io.out(`    approval ${oneLine(approval.id)}: ${oneLine(String(approval.outcome))}${typeof approval.by === 'string' ? ` by ${oneLine(approval.by)}` : ''}`);
  }
  // A summary of refusals past the budget (audit/refusal-budget.ts), and a path recorded cut.
  if (typeof line.repeated === 'number')
    io.out(
      `    repeated ${line.repeated} times from ${oneLine(String(line.first))} to ${oneLine(String(line.last))}${line.overflow ? ' (several hosts or clients)' : ''}`,
    );
  if (line.path_truncated === true) io.out(`    path cut at 1 KiB; sha256 of the whole path: ${oneLine(String(line.path_sha256))}`);
}

/** A stored field printed on one terminal line: no control characters from an edited log. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** verify's report for audit.sink postgres: each replica's chain in the table. */
function reportTable(io: CommandIO, result: TableVerifyResult, json: boolean): number {
  if (json) printJson(io, result);
  else if (result.ok) {
    io.out(
      `audit table intact: ${result.lines} lines in ${result.replicas.length} chain(s) (${result.replicas.join(', ') || 'none'}), chains and heads verified`,
    );
  } else {
    for (const p of result.problems) io.out(`replica ${p.replica}: ${p.seq === 0 ? 'head' : `seq ${p.seq}`}: ${oneLine(p.reason)}`);
    io.err(`audit table verification failed: ${result.problems.length} problem(s)`);
  }
  return result.ok ? 0 : 1;
}

export const audit: Command = {
  name: 'audit',
  usage: `keyway audit tail [-n N] [--follow] [--json]
keyway audit query [--agent A] [--grant G] [--decision D] [--code C] [--host H] [--since T] [--until T] [--json]
keyway audit verify [--allow-empty] [--json]
keyway audit verify --public-key FILE [--dir DIR] [--allow-uncovered] [--allow-empty] [--json]
keyway audit verify --bundle FILE [--public-key FILE] [--json]
keyway audit public-key [--json]
keyway audit export --since T [--until T] --out FILE [--replica NAME] [--json]

All three read across rotated files (logs/audit.<first seq>.jsonl, made when audit.jsonl reaches
audit.max_bytes; audit.keep of them are kept), oldest first. query prints the lines matching every
filter given; --since/--until take an ISO date or a duration ago (15m, 2h, 7d); --json prints each
line as it is stored (one JSON object per line). verify checks the hash chain through every file,
the chain head and the rotation record kept in data/, and exits 1 naming the file and line of each
line that was changed, removed, inserted or reordered, and each file removed or renamed. A log that
rotation pruned is intact, and verify lists each range pruned (seq, when, bytes), warning about any
pruned sooner than audit.min_retention after it was written.

With audit.sink: postgres all three read the table keyway_audit in the store's database instead:
every replica's lines, ordered by time; verify checks each replica's chain and its head row.

Evidence without the master key: keyway signs checkpoints of the chain (Ed25519, in
logs/audit.checkpoints.jsonl) at every rotation, every audit.checkpoint_interval and at stop.
public-key prints the key that checks them. verify --public-key checks a copy of the logs (--dir: a
folder holding audit.jsonl, its rotated files and audit.checkpoints.jsonl), names the first line
that breaks, and says which lines no checkpoint covers yet; those fail the check unless
--allow-uncovered (a live log between two checkpoints). A folder with no audit log (a mistyped
--home or --dir) fails verify (exit 1), and so does an empty log unless --allow-empty. export writes the lines of a window
(--since/--until) with the checkpoints and public key that prove them, as one file that verify
--bundle checks on any machine. With audit.sink postgres, each replica's chain is signed on its own
(keyway_audit_checkpoint) and exported one at a time (--replica, when the table holds several).`,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        lines: { type: 'string', short: 'n' },
        follow: { type: 'boolean', short: 'f' },
        agent: { type: 'string' },
        grant: { type: 'string' },
        decision: { type: 'string' },
        code: { type: 'string' },
        host: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        'public-key': { type: 'string' },
        dir: { type: 'string' },
        bundle: { type: 'string' },
        'allow-uncovered': { type: 'boolean' },
        'allow-empty': { type: 'boolean' },
        replica: { type: 'string' },
        out: { type: 'string' },
      },
      { tail: 0, query: 0, verify: 0, 'public-key': 0, export: 0 },
    );
    const [action] = args.positionals;
    if (action === 'tail') {
      const config = configFor(args, io);
      const db = auditDatabaseOf(config, io.env);
      const lines = Number(args.string('lines') ?? '20');
      if (!Number.isInteger(lines) || lines < 0) throw usageError('-n: expected a whole number');
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      try {
        const options = { lines, follow: args.flag('follow'), signal: controller.signal, perRequest: true };
        const tail = db === null ? tailAudit(keywayPaths(config).audit, options) : tailAuditTable(db, options);
        for await (const line of tail) printLine(io, line, args.json);
      } finally {
        process.off('SIGINT', stop);
      }
      return 0;
    }
    if (action === 'query') {
      const config = configFor(args, io);
      const filter = parseAuditFilter(
        {
          agent: args.string('agent'),
          grant: args.string('grant'),
          decision: args.string('decision'),
          code: args.string('code'),
          host: args.string('host'),
          since: args.string('since'),
          until: args.string('until'),
        },
        (field) => `--${field}`,
      );
      const db = auditDatabaseOf(config, io.env);
      for await (const line of db === null ? readAudit(keywayPaths(config).audit, filter) : linesPerRequest(readAuditTable(db, filter)))
        printLine(io, line, args.json);
      return 0;
    }
    if (action === 'public-key') return printPublicKey(args, io);
    if (action === 'export') return exportEvidence(args, io);
    if (action === 'verify' && (args.string('public-key') !== undefined || args.string('bundle') !== undefined)) return verifyWithoutMasterKey(args, io);
    if (action === 'verify') {
      const services = await servicesFor(args, io, { auditOnly: true });
      const db = auditDatabaseOf(services.config, io.env);
      if (db !== null) return reportTable(io, await verifyAuditTable(db, services.auditHeadKey), args.json);
      const missing = await missingAuditLog(services.paths.audit);
      if (missing !== undefined) {
        io.err(`keyway audit verify: ${missing}`);
        return 1;
      }
      const result = await verifyAudit({
        path: services.paths.audit,
        headPath: services.paths.auditHead,
        headKey: services.auditHeadKey,
        minRetentionMs: services.config.audit.min_retention,
      });
      const empty = emptyAuditLog(result.lines, result.ok, args.flag('allow-empty'), dirname(services.paths.audit));
      if (empty !== undefined) {
        io.err(`keyway audit verify: ${empty}`);
        return 1;
      }
      return reportFile(io, result, args.json);
    }
    throw usageError(unknownSubcommand(action, ['tail', 'query', 'verify', 'public-key', 'export']));
  },
};
