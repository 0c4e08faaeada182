import type { KeyObject } from 'node:crypto';
import { ChainChecker, type AuditProblem } from '../chain.ts';
import { keyIdOf } from './key.ts';
import { checkpointSignatureValid, parseCheckpoint, type Checkpoint } from './record.ts';
import { GENESIS_HASH, parseLine } from '../record.ts';

// `keyway audit verify --public-key`: the chain checked by anyone with the public key, no master key.
// The lines must link (each line's SHA-256 covers the one before); the first kept line must either
// start the chain or follow a signed checkpoint (rotation checkpoints the last line of each file it
// rotates, so what it prunes stays provable); each signed checkpoint must be on the chain as signed;
// and none may lie past its end (a removed tail). Lines after the last checkpoint are sound links
// but nobody has signed them yet: the report says which, and they fail the check unless the caller
// allows them (a live log between two checkpoints): otherwise a log rewritten whole, its checkpoint
// file deleted, would pass as "nothing signed yet".

export interface PublicVerifyResult {
  /** No problem, and every line covered by a checkpoint (or uncovered lines allowed). */
  ok: boolean;
  /** Lines read, including unparseable ones. */
  lines: number;
  problems: AuditProblem[];
  /** Checkpoints whose signature verifies with the key given. */
  checkpoints: number;
  /** The chain's first and last seq read (0 when empty). */
  first_seq: number;
  last_seq: number;
  /** The highest seq a signed checkpoint vouches for, found on the chain as signed (0: none). */
  covered_to: number;
  /** The own times of the first and last lines read, and the newest checkpoint found on the chain as signed: where a copy ends. */
  first_ts?: string;
  last_ts?: string;
  last_checkpoint?: { seq: number; ts: string };
  /** Lines that no checkpoint covers yet (sound links, unsigned): present when there are some. */
  uncovered?: { first_seq: number; last_seq: number };
  key_id: string;
}

/** One line of the log, with where it came from (for the report). */
export interface SourcedLine {
  text: string;
  line: number;
  file?: string | undefined;
}

export async function verifyPublic(
  lines: AsyncIterable<SourcedLine> | Iterable<SourcedLine>,
  checkpointLines: AsyncIterable<SourcedLine> | Iterable<SourcedLine>,
  publicKey: KeyObject,
  options: { allowUncovered?: boolean } = {},
): Promise<PublicVerifyResult> {
  const keyId = keyIdOf(publicKey);
  const problems: AuditProblem[] = [];
  const bySeq = new Map<number, Checkpoint>();
  let valid = 0;
  for await (const { text, line, file } of checkpointLines) {
    if (text.trim() === '') continue;
    const c = parseCheckpoint(text);
    if (c === null) {
      problems.push(withFile({ line, reason: 'unparseable checkpoint' }, file));
      continue;
    }
    if (!checkpointSignatureValid(c, publicKey)) {
      const other = c.key !== keyId ? ` (signed by key ${c.key.slice(0, 16)}, not ${keyId})` : '';
      problems.push(withFile({ line, reason: `checkpoint for seq ${c.seq}: its signature does not verify with this public key${other}` }, file));
      continue;
    }
    valid++;
    const known = bySeq.get(c.seq);
    if (known !== undefined && known.hash !== c.hash)
      problems.push(withFile({ line, reason: `two signed checkpoints for seq ${c.seq} with different hashes` }, file));
    bySeq.set(c.seq, c);
  }

  let checker: ChainChecker | undefined;
  let count = 0;
  let firstSeq = 0;
  let coveredTo = 0;
  let firstTs: string | undefined;
  let lastTs: string | undefined;
  for await (const { text, line, file } of lines) {
    count++;
    const rec = parseLine(text);
    if (rec !== null) {
      firstTs ??= rec.ts;
      lastTs = rec.ts;
    }
    if (checker === undefined && rec !== null) {
      firstSeq = rec.seq;
      // Where the chain must start: its beginning, or right after a line a checkpoint vouches for.
      const start = { seq: rec.seq - 1, hash: rec.prev };
      if (rec.seq === 1) {
        if (rec.prev !== GENESIS_HASH) problems.push(withFile({ line, reason: 'seq 1 does not start the chain (its prev is not the genesis hash)' }, file));
      } else {
        const anchor = bySeq.get(rec.seq - 1);
        if (anchor === undefined) {
          problems.push(
            withFile(
              {
                line,
                reason: `the log starts at seq ${rec.seq}, and no signed checkpoint vouches for the line before it: earlier lines were removed unprovably`,
              },
              file,
            ),
          );
        } else if (anchor.hash !== rec.prev) {
          problems.push(
            withFile({ line, reason: `seq ${rec.seq} does not follow the line the checkpoint for seq ${anchor.seq} signed: it was replaced` }, file),
          );
        } else {
          coveredTo = anchor.seq;
        }
      }
      checker = new ChainChecker({ start });
    }
    checker ??= new ChainChecker();
    checker.feed(text, line, file);
    if (rec === null) continue;
    const signed = bySeq.get(rec.seq);
    if (signed === undefined) continue;
    // Replicas sharing a store share the key: a checkpoint vouches only for the chain it names.
    const lineReplica = typeof rec.replica === 'string' ? rec.replica : undefined;
    if (signed.replica !== lineReplica) {
      problems.push(
        withFile(
          {
            line,
            reason: `the checkpoint for seq ${rec.seq} was signed for the chain of replica ${signed.replica ?? '(none)'}, not ${lineReplica ?? '(none)'}`,
          },
          file,
        ),
      );
    } else if (signed.hash === rec.hash) coveredTo = Math.max(coveredTo, rec.seq);
    else problems.push(withFile({ line, reason: `seq ${rec.seq} is not the line keyway signed at ${signed.ts}: it was changed or replaced` }, file));
  }
  const lastSeq = checker?.last.seq ?? 0;
  for (const c of bySeq.values()) {
    if (c.seq > lastSeq)
      problems.push({ line: 0, reason: `tail removed: a checkpoint signed at ${c.ts} vouches for seq ${c.seq}, and the log ends at seq ${lastSeq}` });
  }
  const all = [...(checker?.problems ?? []), ...problems].sort((a, b) => (a.file ?? '').localeCompare(b.file ?? '') || a.line - b.line);
  const result: PublicVerifyResult = {
    ok: all.length === 0,
    lines: count,
    problems: all,
    checkpoints: valid,
    first_seq: firstSeq,
    last_seq: lastSeq,
    covered_to: coveredTo,
    key_id: keyId,
  };
  if (firstTs !== undefined) result.first_ts = firstTs;
  if (lastTs !== undefined) result.last_ts = lastTs;
  const newest = bySeq.get(coveredTo);
  if (newest !== undefined) result.last_checkpoint = { seq: newest.seq, ts: newest.ts };
  if (lastSeq > coveredTo) {
    result.uncovered = { first_seq: Math.max(coveredTo + 1, firstSeq), last_seq: lastSeq };
    if (options.allowUncovered !== true) result.ok = false;
  }
  return result;
}

function withFile(problem: AuditProblem, file: string | undefined): AuditProblem {
  return file === undefined ? problem : { ...problem, file };
}
