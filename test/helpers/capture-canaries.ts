import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { findLeak } from './leak-canary.ts';

// What the hostile login-capture tests share: the real tokens a test's login server hands out, each
// a fresh canary, and the search of everything an agent received for any of them (every encoding
// leak-canary.ts knows, and UTF-16 read both ways round and from both byte alignments, so an answer
// in UTF-16 is searched too); a placeholder's shape; a server closed with its kept-alive sockets.

export class Canaries {
  readonly values: string[] = [];

  /** A new real token: `REAL`, a kind, 40 hex digits. */
  make(kind = 'tok'): string {
    const value = `REAL${kind}${randomBytes(20).toString('hex')}`;
    this.values.push(value);
    return value;
  }

  /** Which canary shows in `bytes`, and in which form: [] when none. */
  leaks(bytes: Buffer | string): string[] {
    const raw = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8');
    // What a client decodes too: a gzip file (from its magic, wherever it starts), each base32 run.
    const decoded = [raw, ...gunzipped(raw)];
    for (const text of decoded.map((b) => b.toString('latin1'))) for (const run of text.match(/[A-Za-z2-7]{16,}=*/g) ?? []) decoded.push(fromBase32(run));
    const readings = decoded.flatMap((buf) => [buf.toString('latin1'), buf, utf16le(buf), utf16le(buf.subarray(1)), utf16le(swapped(buf))]);
    const found: string[] = [];
    for (const secret of this.values)
      for (const reading of readings) {
        const form = findLeak(reading, secret);
        if (form !== undefined) found.push(`${form} of ${secret.slice(0, 10)}…`);
      }
    return [...new Set(found)];
  }
}

/**
 * `bytes` read as UTF-16LE, whole code units only (an odd last byte dropped, as toString does), from an
 * even address. Node 24.21's toString('utf16le') of an odd-length slice at an odd address copies one
 * byte past the buffer it allocates (nodejs/node#64697; Node 22.23 and 26.10 do not): the reading at
 * offset 1 of every even-length answer over ~520 bytes did so, and the corrupted heap crashed these
 * tests' workers later, in the GC's ArrayBuffer sweep (SIGSEGV, about 1 run in 25).
 */
function utf16le(bytes: Buffer): string {
  const whole = bytes.subarray(0, bytes.length - (bytes.length % 2));
  return (whole.byteOffset % 2 === 0 ? whole : Buffer.from(whole)).toString('utf16le');
}

/** UTF-16BE read as LE: its bytes swapped in pairs (an odd last byte dropped). */
function swapped(buf: Buffer): Buffer {
  return Buffer.from(buf.subarray(0, buf.length - (buf.length % 2))).swap16();
}

/** Each gzip file in `bytes` (from each place its magic is), decoded as far as it goes. */
function gunzipped(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = bytes.indexOf(GZIP_MAGIC); at !== -1; at = bytes.indexOf(GZIP_MAGIC, at + 1)) {
    try {
      out.push(gunzipSync(bytes.subarray(at), { finishFlush: zlibConstants.Z_SYNC_FLUSH }));
    } catch {
      // not a gzip file there
    }
  }
  return out;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, padded (written here apart from keyway's leak guard). */
export function base32(bytes: Buffer): string {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += BASE32[Number.parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out.padEnd(Math.ceil(out.length / 8) * 8, '=');
}

/** A base32 run decoded from its start, either case, padded or not. */
export function fromBase32(text: string): Buffer {
  let bits = '';
  for (const c of text.toUpperCase().replace(/=+$/, '')) bits += BASE32.indexOf(c).toString(2).padStart(5, '0');
  const out: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(Number.parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

/** A placeholder's shape: keyway's opaque mark, or a JWT whose header starts with kwc. */
export const isPlaceholder = (v: unknown): boolean => typeof v === 'string' && (/^kwcap_[A-Za-z0-9]{26,}$/.test(v) || v.startsWith('eyJrd2Mi'));

/** The server's close, which also ends the kept-alive connections it holds (so afterAll does not wait on them). */
export function closeWithSockets(server: Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
}
