// `keyway audit public-key`, `audit verify --public-key/--bundle` and `audit export`: the audit log
// as evidence that anyone can check with keyway's public key, without the master key.

import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { auditDatabaseOf, chainFiles, parseAuditFilter, verifyAudit, verifyAuditTable } from '../../audit/index.ts';
import { tableChain, tableChains } from '../../audit/table/checkpoint-chain.ts';
import {
  checkpointsPathFor,
  exportBundle,
  fileChain,
  parseBundle,
  publicKeyPem,
  readPublicKey,
  verifyBundle,
  verifyPublic,
  type ChainSource,
  type PublicVerifyResult,
  type SourcedLine,
} from '../../audit/checkpoints/index.ts';
import { readLinesAt } from '../../audit/lines.ts';
import { KeywayError } from '../../errors/index.ts';
import { keywayPaths } from '../../paths.ts';
import type { Args } from '../args.ts';
import { configFor, servicesFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { emptyAuditLog, missingAuditLog } from './audit-verify.ts';

export async function printPublicKey(args: Args, io: CommandIO): Promise<number> {
  const services = await servicesFor(args, io, { auditOnly: true });
  const key = services.checkpointKey;
  if (args.json) printJson(io, { key_id: key.id, public_key: publicKeyPem(key) });
  else io.out(publicKeyPem(key).trimEnd());
  return 0;
}

/** verify --public-key FILE [--dir DIR], or --bundle FILE [--public-key FILE]: no master key needed. */
export async function verifyWithoutMasterKey(args: Args, io: CommandIO): Promise<number> {
  const keyFile = args.string('public-key');
  const bundleFile = args.string('bundle');
  const publicKey = keyFile === undefined ? undefined : readKeyFile(keyFile);
  if (bundleFile !== undefined) {
    const bundle = parseBundle(readText(bundleFile, '--bundle'));
    if (typeof bundle === 'string') throw usageError(`--bundle: ${bundle}`);
    const result = await verifyBundle(bundle, publicKey);
    if (typeof result === 'string') throw usageError(`--bundle: ${result}`);
    // Only a window whose signature verified is printed: a relabelled one is reported as a problem instead.
    const w = result.window;
    if (!args.json && w !== undefined) {
      io.out(
        `the bundle's window, signed by key ${w.key}: ${w.since} to ${w.until}, ${w.lines} line(s) from seq ${w.first_seq} to ${w.last_seq}${w.replica === undefined ? '' : `, replica ${w.replica}`}, exported ${w.exported_at}`,
      );
    }
    if (publicKey === undefined && !args.json)
      io.err(
        `checked with the key the bundle carries (key id ${result.key_id}): compare it with \`keyway audit public-key --json\` on the keyway that wrote it`,
      );
    return report(io, result, args.json, `bundle ${bundleFile}`);
  }
  if (publicKey === undefined) throw usageError('verify without the master key needs --public-key FILE (or --bundle FILE)');
  const config = configFor(args, io);
  if (auditDatabaseOf(config, io.env) !== null)
    throw usageError('--public-key checks audit files: with audit.sink postgres, export the lines with `keyway audit export` on a keyway with the master key');
  const configured = keywayPaths(config).audit;
  const dir = args.string('dir');
  const auditPath = dir === undefined ? configured : join(resolve(dir), basename(configured));
  const missing = await missingAuditLog(auditPath);
  if (missing !== undefined) {
    io.err(`keyway audit verify: ${missing}`);
    return 1;
  }
  // The live file's unterminated last bytes are a crash artifact (audit/crash-artifacts.ts), not a line.
  let torn: { line: number; offset: number; bytes: number } | undefined;
  const lines = sourcedLines(await chainFiles(auditPath), (found) => {
    torn = found;
  });
  const checkpoints = sourcedLines([checkpointsPathFor(auditPath)]);
  const result = await verifyPublic(lines, checkpoints, publicKey, { allowUncovered: args.flag('allow-uncovered') });
  if (torn !== undefined && !args.json) {
    io.out(
      `crash artifact: line ${torn.line}, offset ${torn.offset}: ${torn.bytes} byte(s) with no newline after them (an append cut short by a crash, or one under way); not a line of the chain`,
    );
  }
  const empty = emptyAuditLog(result.lines, result.ok, args.flag('allow-empty'), dirname(auditPath));
  if (empty !== undefined) {
    io.err(`keyway audit verify: ${empty}`);
    return 1;
  }
  return report(io, result, args.json, dir ?? 'audit log');
}

export async function exportEvidence(args: Args, io: CommandIO): Promise<number> {
  const out = args.string('out');
  if (out === undefined) throw usageError('export needs --out FILE');
  if (args.string('since') === undefined) throw usageError('export needs --since (an ISO date, or a duration ago such as 24h)');
  const filter = parseAuditFilter({ since: args.string('since'), until: args.string('until') }, (f) => `--${f}`);
  const services = await servicesFor(args, io, { auditOnly: true });
  const { paths, config } = services;
  const key = services.checkpointKey;
  const db = auditDatabaseOf(config, io.env);
  let source: {
    chain: ChainSource;
    replica: string | undefined;
    verifyWhole: (pin: number) => Promise<{ ok: boolean; problems: Array<{ reason: string }>; pinned?: string }>;
  };
  if (db === null) {
    source = {
      chain: fileChain(paths.audit, checkpointsPathFor(paths.audit)),
      replica: config.audit.replica,
      verifyWhole: (pin) =>
        verifyAudit({ path: paths.audit, headPath: paths.auditHead, headKey: services.auditHeadKey, minRetentionMs: config.audit.min_retention, pin }),
    };
  } else {
    // audit.sink postgres: one replica's chain per bundle.
    const chains = await tableChains(db);
    const replica = args.string('replica') ?? (chains.length === 1 ? chains[0] : undefined);
    if (replica === undefined)
      throw usageError(`export one chain at a time: --replica ${chains.length === 0 ? 'NAME (the table holds none yet)' : `one of ${chains.join(', ')}`}`);
    if (!chains.includes(replica)) throw usageError(`--replica: the table holds no chain "${replica}" (it holds ${chains.join(', ') || 'none'})`);
    source = { chain: tableChain(db, replica), replica, verifyWhole: (pin) => verifyAuditTable(db, services.auditHeadKey, { replica, seq: pin }) };
  }
  const result = await exportBundle({ ...source, key, since: filter.since!, until: filter.until ?? new Date() });
  if (!result.ok) throw new KeywayError('audit_invalid', result.reason);
  writeFileSync(out, `${JSON.stringify(result.bundle)}\n`, { mode: 0o600 });
  const { window } = result.bundle;
  if (args.json) printJson(io, { out, key_id: key.id, window, lines: result.bundle.lines.length, signed_now: result.signed });
  else
    io.out(
      `exported ${window.lines} line(s), seq ${window.first_seq}-${window.last_seq} (${result.bundle.lines.length} with the lines that link them to checkpoints) to ${out}${result.signed ? '; a checkpoint was signed for the newest of them' : ''}`,
    );
  return 0;
}

function report(io: CommandIO, result: PublicVerifyResult, json: boolean, what: string): number {
  if (json) {
    printJson(io, result);
    return result.ok ? 0 : 1;
  }
  if (result.ok) {
    io.out(
      `${what} verified with key ${result.key_id}: ${result.lines} lines (seq ${result.first_seq}-${result.last_seq}), ${result.checkpoints} signed checkpoint(s), signed through seq ${result.covered_to}`,
    );
  } else {
    for (const p of result.problems) io.out(`${p.file === undefined ? '' : `${p.file}: `}line ${p.line}: ${p.reason}`);
  }
  // Where the lines end, in time, and where the signatures end: a copy cut short at a checkpoint shows it here.
  if (result.first_ts !== undefined)
    io.out(
      `lines from ${result.first_ts} to ${result.last_ts}; ${result.last_checkpoint === undefined ? 'no checkpoint on the chain' : `last checkpoint: seq ${result.last_checkpoint.seq}, signed at ${result.last_checkpoint.ts}`}`,
    );
  if (result.uncovered) {
    io.out(`not yet covered by a checkpoint: seq ${result.uncovered.first_seq}-${result.uncovered.last_seq} (they link, but nobody has signed them yet)`);
    if (!result.ok && result.problems.length === 0)
      io.err('unsigned lines fail the check: pass --allow-uncovered for a live log between checkpoints, or export the window (export signs its end)');
  }
  if (!result.ok && result.problems.length > 0) io.err(`audit log verification failed: ${result.problems.length} problem(s)`);
  return result.ok ? 0 : 1;
}

/** `onTorn`: hears the last file's unterminated last bytes, which are then not yielded (a torn last line). */
async function* sourcedLines(files: readonly string[], onTorn?: (torn: { line: number; offset: number; bytes: number }) => void): AsyncGenerator<SourcedLine> {
  const tag = files.length > 1;
  for (const [i, file] of files.entries()) {
    let n = 0;
    try {
      for await (const { text, offset, terminated } of readLinesAt(file)) {
        n++;
        if (!terminated && onTorn !== undefined && i === files.length - 1) onTorn({ line: n, offset, bytes: Buffer.byteLength(text) });
        else yield { text, line: n, file: tag ? file : undefined };
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && n === 0) continue;
      throw new KeywayError('audit_invalid', `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

function readKeyFile(file: string) {
  const key = readPublicKey(readText(file, '--public-key'));
  if (typeof key === 'string') throw usageError(`--public-key ${file}: ${key}`);
  return key;
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
