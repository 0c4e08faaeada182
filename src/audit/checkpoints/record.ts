import { sign, verify, type KeyObject } from 'node:crypto';

// A checkpoint: keyway's signature on the chain head at a moment, one JSON line in
// logs/audit.checkpoints.jsonl: {seq, hash, ts, key, sig} (and `replica` when set). Whoever holds the
// public key can check that the line with that seq had that hash when keyway signed, and so (the
// chain being SHA-256 links) every line before it: without the master key.

export interface Checkpoint {
  seq: number;
  hash: string;
  ts: string;
  /** Which key signed (key.ts keyIdOf). */
  key: string;
  /** Ed25519 signature, base64, over signedText(). */
  sig: string;
  replica?: string | undefined;
}

/** The exact bytes signed: a fixed label, then the fields in order, so nothing else can be read into them. */
export function signedText(c: Pick<Checkpoint, 'seq' | 'hash' | 'ts' | 'replica'>): string {
  return `keyway audit checkpoint v1\n${c.seq}\n${c.hash}\n${c.ts}\n${c.replica ?? ''}`;
}

export function signCheckpoint(head: { seq: number; hash: string }, key: { privateKey: KeyObject; id: string }, ts: string, replica?: string): Checkpoint {
  const body = { seq: head.seq, hash: head.hash, ts, ...(replica === undefined ? {} : { replica }) };
  const sig = sign(null, Buffer.from(signedText(body)), key.privateKey).toString('base64');
  return { ...body, key: key.id, sig };
}

/** A line of the checkpoint file parsed, or null when it is not a checkpoint. */
export function parseCheckpoint(text: string): Checkpoint | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const c = value as Record<string, unknown>;
  if (!Number.isSafeInteger(c['seq']) || (c['seq'] as number) < 1) return null;
  if (typeof c['hash'] !== 'string' || !/^[0-9a-f]{64}$/.test(c['hash'])) return null;
  if (typeof c['ts'] !== 'string' || typeof c['key'] !== 'string' || typeof c['sig'] !== 'string') return null;
  if (c['replica'] !== undefined && typeof c['replica'] !== 'string') return null;
  return {
    seq: c['seq'] as number,
    hash: c['hash'],
    ts: c['ts'],
    key: c['key'],
    sig: c['sig'],
    ...(c['replica'] === undefined ? {} : { replica: c['replica'] as string }),
  };
}

export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(signedText(c)), publicKey, Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}
