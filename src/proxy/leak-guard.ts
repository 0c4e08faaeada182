import { LRUCache } from 'lru-cache';
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Credential } from '../credentials/material.ts';

export const REDACTION = Buffer.from('[redacted by keyway]');

// Too short a needle would match ordinary text; real tokens and keys are far longer.
const MIN_SECRET_LENGTH = 8;

/** The byte strings that would reveal a credential if an upstream echoed them back. */
export function secretNeedles(credential: Credential): Buffer[] {
  // This runs on every intercepted request, and credentials are fresh objects each time: remember
  // the needles of the last few secrets (bounded, as OAuth tokens rotate for as long as keyway runs).
  const key = credential.kind === 'token' ? credential.value : `${credential.username}\0${credential.password}`;
  let needles = needlesBySecret.get(key);
  if (!needles) {
    const values =
      credential.kind === 'token'
        ? [credential.value]
        : [Buffer.from(`${credential.username}:${credential.password}`).toString('base64'), credential.password];
    needles = values.filter((v) => v.length >= MIN_SECRET_LENGTH).map((v) => Buffer.from(v));
    needlesBySecret.set(key, needles);
  }
  return needles;
}

const needlesBySecret = new LRUCache<string, Buffer[]>({ max: 256 });

/**
 * Textual, unencoded bodies are scanned: an API that echoes the request (headers in a debug
 * endpoint, an error quoting the Authorization header) must not hand the agent the secret it
 * never had. Compressed or binary bodies pass untouched.
 */
export function shouldScan(headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  const type = String(headers['content-type'] ?? '').toLowerCase();
  return /^text\/|[/+](json|xml|javascript|x-www-form-urlencoded)\b/.test(type) || type.startsWith('application/problem');
}

/**
 * Replaces every occurrence of a needle with REDACTION as the body streams. Only a tail that could
 * be the start of a needle is held back between chunks, so streams such as server-sent events
 * still flow chunk by chunk.
 */
export class LeakGuard extends Transform {
  readonly #needles: Buffer[];
  #carry: Buffer = Buffer.alloc(0);
  redactions = 0;

  constructor(needles: Buffer[]) {
    super();
    this.#needles = needles;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const data = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { output, rest } = this.#redact(data);
    this.#carry = rest;
    done(null, output.length ? output : undefined);
  }

  override _flush(done: TransformCallback): void {
    done(null, this.#carry.length ? this.#carry : undefined);
  }

  #redact(data: Buffer): { output: Buffer; rest: Buffer } {
    const { pieces, count, from } = replaceNeedles(data, this.#needles);
    this.redactions += count;
    const hold = this.#partialMatchAtEnd(data, from);
    pieces.push(data.subarray(from, data.length - hold));
    return { output: Buffer.concat(pieces), rest: Buffer.from(data.subarray(data.length - hold)) };
  }

  /** How many bytes at the end of data (after `from`) could begin a needle continued in the next chunk. */
  #partialMatchAtEnd(data: Buffer, from: number): number {
    let longest = 0;
    for (const n of this.#needles) {
      const max = Math.min(n.length - 1, data.length - from);
      for (let len = max; len > longest; len--) {
        if (data.subarray(data.length - len).equals(n.subarray(0, len))) {
          longest = len;
          break;
        }
      }
    }
    return longest;
  }
}

/** Every needle in `data` replaced; `from` is where the unmatched tail begins. */
function replaceNeedles(data: Buffer, needles: readonly Buffer[]): { pieces: Buffer[]; count: number; from: number } {
  const pieces: Buffer[] = [];
  let from = 0;
  let count = 0;
  for (;;) {
    let at = -1;
    let needle: Buffer | undefined;
    for (const n of needles) {
      const i = data.indexOf(n, from);
      if (i !== -1 && (at === -1 || i < at)) {
        at = i;
        needle = n;
      }
    }
    if (at === -1 || !needle) return { pieces, count, from };
    pieces.push(data.subarray(from, at), REDACTION);
    count++;
    from = at + needle.length;
  }
}

/** A whole body at once: the common small JSON answer, sent again with its true length. */
export function redactAll(data: Buffer, needles: readonly Buffer[]): { output: Buffer; count: number } {
  const { pieces, count, from } = replaceNeedles(data, needles);
  if (count === 0) return { output: data, count };
  pieces.push(data.subarray(from));
  return { output: Buffer.concat(pieces), count };
}
