import { sign, verify, type KeyObject } from 'node:crypto';
import type { AuditLine } from '../record.ts';

// What a bundle says it is, signed by `keyway audit export` with the checkpoint key: the window asked
// for, the chain's replica, the seqs of the window's first and last lines and how many lines lie in
// it, and the seqs the bundle runs from and to. Checkpoints vouch for the lines; without this, the
// words around them (the window, which replica) could be relabelled to another day and still verify.
// verify --bundle checks the signature, then holds the claim to the lines' own signed times.

export interface BundleClaim {
  since: string;
  until: string;
  /** The `replica` of the chain's lines (the bundle's last line), absent when they carry none. */
  replica?: string | undefined;
  /** The first and last seq whose own `ts` lies in [since, until], and how many lines do. */
  first_seq: number;
  last_seq: number;
  lines: number;
  /** The first and last seq the bundle holds (it starts after a checkpoint, ends at one). */
  from_seq: number;
  to_seq: number;
  exported_at: string;
  /** Which key signed (key.ts keyIdOf), and the Ed25519 signature (base64) over claimText(). */
  key: string;
  sig: string;
}

type ClaimFields = Omit<BundleClaim, 'key' | 'sig'>;

/** The exact bytes signed: a label of its own (never a checkpoint's), then the fields in order. */
function claimText(c: ClaimFields): string {
  return ['keyway audit bundle claim v1', c.since, c.until, c.replica ?? '', c.first_seq, c.last_seq, c.lines, c.from_seq, c.to_seq, c.exported_at].join('\n');
}

export function signClaim(fields: ClaimFields, key: { privateKey: KeyObject; id: string }): BundleClaim {
  const body: ClaimFields = { ...fields };
  if (body.replica === undefined) delete body.replica;
  return { ...body, key: key.id, sig: sign(null, Buffer.from(claimText(body)), key.privateKey).toString('base64') };
}

/** A bundle's `claim` member, or null when it is not a well-formed claim. */
export function parseClaim(value: unknown): BundleClaim | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const c = value as Record<string, unknown>;
  const strings = ['since', 'until', 'exported_at', 'key', 'sig'].every((k) => typeof c[k] === 'string');
  const seqs = ['first_seq', 'last_seq', 'lines', 'from_seq', 'to_seq'].every((k) => Number.isSafeInteger(c[k]) && (c[k] as number) >= 0);
  if (!strings || !seqs || (c['replica'] !== undefined && typeof c['replica'] !== 'string')) return null;
  return c as unknown as BundleClaim;
}

export function claimSignatureValid(c: BundleClaim, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(claimText(c)), publicKey, Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}

/**
 * The signed claim held to the bundle's lines (parsed, in order): it must name where they start and
 * end and their replica, and the lines whose own time lies in the window must be exactly the ones it
 * counts, from its first seq to its last. A line's time is when its request started and lines are
 * written as requests end, so a line inside the seq range may lie before the window (a long request):
 * it is not counted, and not a problem.
 */
export function claimProblems(c: BundleClaim, lines: readonly AuditLine[]): string[] {
  const problems: string[] = [];
  const from = lines[0]?.seq ?? 0;
  const to = lines.at(-1)?.seq ?? 0;
  if (from !== c.from_seq || to !== c.to_seq)
    problems.push(`the bundle holds seq ${from}-${to}, and keyway signed it as seq ${c.from_seq}-${c.to_seq}: lines were cut off or added`);
  const lastReplica = lines.at(-1)?.replica;
  if (lastReplica !== c.replica)
    problems.push(`the lines are replica ${lastReplica ?? '(none)'}'s, and keyway signed the bundle for replica ${c.replica ?? '(none)'}`);
  const since = Date.parse(c.since);
  const until = Date.parse(c.until);
  const inWindow = (l: AuditLine) => Date.parse(l.ts) >= since && Date.parse(l.ts) <= until;
  let counted = 0;
  for (const l of lines) {
    if (!inWindow(l)) continue;
    counted++;
    if (l.seq < c.first_seq || l.seq > c.last_seq)
      problems.push(`seq ${l.seq}, at ${l.ts}, lies in the signed window ${c.since} to ${c.until} but outside its seq ${c.first_seq}-${c.last_seq}`);
  }
  for (const seq of [c.first_seq, c.last_seq]) {
    const l = lines.find((x) => x.seq === seq);
    if (l !== undefined && !inWindow(l)) problems.push(`seq ${seq}, at ${l.ts}, lies outside the signed window ${c.since} to ${c.until}`);
  }
  if (counted !== c.lines) problems.push(`${counted} line(s) lie in the signed window ${c.since} to ${c.until}, and keyway signed ${c.lines}`);
  return problems;
}
