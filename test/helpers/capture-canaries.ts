import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
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
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8');
    const readings = [buf.toString('latin1'), buf, utf16le(buf), utf16le(buf.subarray(1)), utf16le(swapped(buf))];
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
