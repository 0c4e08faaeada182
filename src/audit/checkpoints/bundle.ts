import { appendFile, readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { chainFiles } from '../chain-files.ts';
import { readLines } from '../lines.ts';
import { parseLine, type AuditLine } from '../record.ts';
import { claimProblems, claimSignatureValid, parseClaim, signClaim, type BundleClaim } from './claim.ts';
import { publicKeyPem, readPublicKey, type CheckpointKey } from './key.ts';
import { checkpointSignatureValid, parseCheckpoint, signCheckpoint, type Checkpoint } from './record.ts';
import { verifyPublic, type PublicVerifyResult, type SourcedLine } from './verify-public.ts';

// `keyway audit export`: the lines of a time window in a bundle that verifies on its own, elsewhere,
// with the public key: the lines from just after a signed checkpoint up to one that covers the
// window's last line (so both ends are vouched for), the checkpoints among them, and the public key.
// Where no checkpoint covers the window's end yet (recent lines), export signs one, after the whole
// log has passed `keyway audit verify` with the master key, and appends it to the checkpoint file.
// What the bundle says of itself (window, replica, seq range) is signed too (claim.ts).

/** /2: the bundle carries a signed claim. A /1 bundle's window was unsigned: it no longer verifies. */
export const BUNDLE_FORMAT = 'keyway-audit-bundle/2';
const UNSIGNED_FORMAT = 'keyway-audit-bundle/1';

export interface AuditBundle {
  /** Export writes BUNDLE_FORMAT; an older /1 bundle is read only to be refused with its reason. */
  format: typeof BUNDLE_FORMAT | typeof UNSIGNED_FORMAT;
  exported_at: string;
  /** The window asked for, and the seq range of its lines (the bundle holds a few lines around it). */
  window: { since: string; until: string; first_seq: number; last_seq: number; lines: number };
  public_key: string;
  key_id: string;
  /** The log's lines as stored, in order. */
  lines: string[];
  /** The checkpoint lines that vouch for them. */
  checkpoints: string[];
  /** The window, replica and seq range, signed (claim.ts); `window` repeats part of it for reading. */
  claim: BundleClaim;
}

/** What verify --bundle found the bundle to be: its signed claim, once the signature verifies. */
export type BundleVerifyResult = PublicVerifyResult & { window?: Omit<BundleClaim, 'sig'> };

/** One chain's lines and checkpoints: the audit files (fileChain), or one replica's rows (audit.sink postgres). */
export interface ChainSource {
  /** Every line of the chain as stored, oldest first. */
  lines(): AsyncIterable<string>;
  /** The chain's checkpoint lines, as stored. */
  checkpoints(): Promise<string[]>;
  /** Keeps a checkpoint export signed. */
  add(checkpoint: Checkpoint, line: string): Promise<void>;
}

/** The audit files: the rotated files and the live one, and the checkpoint file beside them. */
export function fileChain(auditPath: string, checkpointsPath: string): ChainSource {
  return {
    async *lines() {
      for (const file of await chainFiles(auditPath)) {
        try {
          for await (const text of readLines(file)) yield text;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    },
    async checkpoints() {
      try {
        return (await readFile(checkpointsPath, 'utf8')).split('\n').filter((l) => l.trim() !== '');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
    },
    add: (_checkpoint, line) => appendFile(checkpointsPath, `${line}\n`, { mode: 0o600 }),
  };
}

export interface ExportOptions {
  chain: ChainSource;
  key: CheckpointKey;
  since: Date;
  until: Date;
  /**
   * The whole log checked with the master key (verifyAudit): must pass before export signs a
   * checkpoint, and give back the hash it walked at `pin` (the line to be signed).
   */
  verifyWhole: (pin: number) => Promise<{ ok: boolean; problems: Array<{ reason: string }>; pinned?: string }>;
  now?: () => Date;
  replica?: string | undefined;
}

export type ExportResult = { ok: true; bundle: AuditBundle; signed: boolean } | { ok: false; reason: string };

export async function exportBundle(o: ExportOptions): Promise<ExportResult> {
  // Only checkpoints this key signed (a forged one would make a bundle that fails elsewhere).
  const checkpoints = (await o.chain.checkpoints())
    .map((text) => ({ checkpoint: parseCheckpoint(text), text }))
    .filter((c): c is { checkpoint: Checkpoint; text: string } => c.checkpoint !== null && checkpointSignatureValid(c.checkpoint, o.key.publicKey));
  const seqs = checkpoints.map((c) => c.checkpoint.seq).sort((a, b) => a - b);
  const signedSeqs = new Set(seqs);
  // One pass: every line (the log is read as a stream), kept from the last checkpoint before the window on.
  let kept: Array<{ seq: number; hash: string; text: string }> = [];
  let first: number | undefined;
  let last: number | undefined;
  let inWindow = 0;
  for await (const text of o.chain.lines()) {
    const rec = parseLine(text);
    if (rec === null) continue;
    const ts = Date.parse(rec.ts);
    // Before the window: only what follows the latest checkpoint needs keeping.
    if (first === undefined && signedSeqs.has(rec.seq) && !(ts >= o.since.getTime())) {
      kept = [];
      continue;
    }
    if (ts >= o.since.getTime() && ts <= o.until.getTime()) {
      first ??= rec.seq;
      last = rec.seq;
      inWindow++;
    }
    kept.push({ seq: rec.seq, hash: rec.hash, text });
    // Past the window and at a checkpoint: the bundle ends here.
    if (first !== undefined && ts > o.until.getTime() && signedSeqs.has(rec.seq)) break;
  }
  if (first === undefined || last === undefined) return { ok: false, reason: 'no audit line in that window' };
  // The end: the first checkpoint at or after the window's last line; the lines past it are not needed.
  let end = seqs.find((s) => s >= last);
  let signed = false;
  if (end === undefined) {
    const tip = kept.at(-1)!;
    const verified = await o.verifyWhole(tip.seq);
    if (!verified.ok)
      return { ok: false, reason: `the audit log does not verify (${verified.problems[0]?.reason ?? 'problems'}): nothing signed, nothing exported` };
    // The lines were read before the verify: sign only the line the verify itself walked, so a file
    // changed between the two reads (and put back) cannot get its changed line signed.
    if (verified.pinned !== tip.hash)
      return {
        ok: false,
        reason: `seq ${tip.seq} as exported is not the line the verify walked (the log changed meanwhile): nothing signed, nothing exported`,
      };
    const checkpoint = signCheckpoint(tip, o.key, (o.now?.() ?? new Date()).toISOString(), o.replica);
    const line = JSON.stringify(checkpoint);
    await o.chain.add(checkpoint, line);
    checkpoints.push({ checkpoint, text: line });
    end = tip.seq;
    signed = true;
  }
  const lines = kept.filter((l) => l.seq <= end);
  const from = lines[0]?.seq ?? first;
  const used = checkpoints.filter((c) => c.checkpoint.seq >= from - 1 && c.checkpoint.seq <= end);
  const exportedAt = (o.now?.() ?? new Date()).toISOString();
  const window = { since: o.since.toISOString(), until: o.until.toISOString(), first_seq: first, last_seq: last, lines: inWindow };
  // The replica the lines themselves carry (the last one's), so the claim and the lines agree by construction.
  const replica = parseLine(lines.at(-1)?.text ?? '')?.replica;
  const claim = signClaim({ ...window, replica, from_seq: from, to_seq: lines.at(-1)?.seq ?? end, exported_at: exportedAt }, o.key);
  return {
    ok: true,
    signed,
    bundle: {
      format: BUNDLE_FORMAT,
      exported_at: exportedAt,
      window,
      public_key: publicKeyPem(o.key),
      key_id: o.key.id,
      lines: lines.map((l) => l.text),
      checkpoints: used.map((c) => c.text),
      claim,
    },
  };
}

/** A bundle read from its file: the parsed bundle, or a one-line reason. */
export function parseBundle(text: string): AuditBundle | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not a JSON bundle';
  }
  const b = value as Partial<AuditBundle> | null;
  // A /1 bundle is read, so that verify can say why it fails (its window is unsigned), not "not a bundle".
  const format = (b as { format?: unknown } | null)?.format;
  if (b === null || typeof b !== 'object' || (format !== BUNDLE_FORMAT && format !== UNSIGNED_FORMAT)) return `not a ${BUNDLE_FORMAT} bundle`;
  if (!Array.isArray(b.lines) || !Array.isArray(b.checkpoints) || typeof b.public_key !== 'string')
    return 'the bundle lacks its lines, checkpoints or public key';
  if (!b.lines.every((l) => typeof l === 'string') || !b.checkpoints.every((l) => typeof l === 'string')) return 'the bundle holds lines that are not text';
  return b as AuditBundle;
}

/**
 * A bundle checked with `publicKey` (the one the verifier trusts), else with the key it carries.
 * Every line must be covered by a checkpoint (export makes them so), the claim keyway signed must
 * verify and agree with the lines' own times and seqs, and the window must lie within the lines: a
 * bundle cut short, or relabelled to another window or replica, by whoever passed it on fails.
 */
export async function verifyBundle(bundle: AuditBundle, publicKey?: KeyObject): Promise<BundleVerifyResult | string> {
  const key = publicKey ?? readPublicKey(bundle.public_key);
  if (typeof key === 'string') return `the bundle's public key: ${key}`;
  const sourced = (texts: string[], file: string): SourcedLine[] => texts.map((text, i) => ({ text, line: i + 1, file }));
  const result: BundleVerifyResult = await verifyPublic(sourced(bundle.lines, 'lines'), sourced(bundle.checkpoints, 'checkpoints'), key);
  const fail = (reason: string) => {
    result.problems.push({ line: 0, reason });
    result.ok = false;
  };
  const claim = parseClaim((bundle as { claim?: unknown }).claim);
  if (claim === null) {
    fail(
      bundle.format === UNSIGNED_FORMAT
        ? `the bundle's window is not signed (a ${UNSIGNED_FORMAT} bundle, from a keyway before bundles were signed): export it again`
        : 'the bundle has no well-formed signed claim of its window',
    );
  } else if (!claimSignatureValid(claim, key)) {
    fail("the bundle's signed claim (its window, replica and seq range) does not verify with this public key: it was changed after export");
  } else {
    const { sig: _sig, ...signed } = claim;
    result.window = signed;
    const w = bundle.window;
    const same =
      w !== undefined &&
      w.since === claim.since &&
      w.until === claim.until &&
      w.first_seq === claim.first_seq &&
      w.last_seq === claim.last_seq &&
      w.lines === claim.lines &&
      bundle.exported_at === claim.exported_at;
    if (!same)
      fail(
        `the bundle's window is not the one keyway signed (${claim.since} to ${claim.until}, seq ${claim.first_seq}-${claim.last_seq}, exported ${claim.exported_at}): it was relabelled`,
      );
    const parsed = bundle.lines.map((text) => parseLine(text)).filter((l): l is AuditLine => l !== null);
    for (const reason of claimProblems(claim, parsed)) fail(reason);
  }
  const window = bundle.window;
  const inside = window !== undefined && result.first_seq <= window.first_seq && window.last_seq <= result.last_seq && window.first_seq <= window.last_seq;
  if (!inside) {
    fail(`the bundle's lines (seq ${result.first_seq}-${result.last_seq}) do not hold the window it names: lines were cut off`);
  }
  return result;
}
