// Where a batch of messages goes: a stream (syslog over TCP or TLS, octet-counted), datagrams (syslog
// over UDP), or an HTTPS POST (OCSF JSON). A send resolves once the batch is handed over as far as
// the transport can tell: written to the socket (TCP, TLS), each datagram sent (UDP), or a 2xx answer
// (HTTPS); it rejects otherwise, and the caller sends the batch again later. Failures name the
// target and an error code only.
//
// Syslog over TCP and TLS has no acknowledgement (RFC 6587): bytes the kernel took may never be read
// by a receiver that resets. So a stream that breaks soon after a batch was written (a write that
// fails, or a reset within BREAK_WINDOW_MS of the last write) rejects the next send
// `unsure`, carrying the mark of the OLDEST batch written on that connection within the window: the
// caller sends again from there. Catching up writes batches back to back, so the kernel may hold
// several unread when the receiver resets, not only the last. A receiver may then get some lines
// twice (each has its seq and id to drop it by); it does not lose them.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { Cursor } from './cursor.ts';

export interface Transport {
  /**
   * Sends every message of the batch, in order; `mark` is the cursor from before it. A rejection
   * with `unsure: true` says batches before this one may not have arrived either (a stream that
   * broke after they were written): its `resendFrom` is the mark of the oldest of them.
   */
  send(messages: readonly Buffer[], mark: Cursor): Promise<void>;
  /**
   * With nothing new to send: throws as `send` would when the stream broke soon after its last
   * writes, so what it may have lost goes again now, not when the next line is written.
   */
  checkBroken?(): void;
  close(): void;
}

/** A stream closed by the receiver this soon after a write may have dropped what was written. */
const BREAK_WINDOW_MS = 5_000;

/** An error after which the batches from `resendFrom` on are sent again too. */
function unsure(err: unknown, resendFrom: Cursor): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  return Object.assign(e, { unsure: true, resendFrom });
}

export function isUnsure(err: unknown): boolean {
  return (err as { unsure?: unknown } | null)?.unsure === true;
}

/** Where an `unsure` failure says to send again from: the cursor before the oldest batch that may be lost. */
export function resendFrom(err: unknown): Cursor | null {
  return isUnsure(err) ? ((err as { resendFrom: Cursor }).resendFrom ?? null) : null;
}

/** How long a connection or an HTTPS answer may take before the batch is tried again later. */
const TIMEOUT_MS = 10_000;

/** `headers`: an https:// target's own headers (headers.ts), read at each send. */
export function transportFor(to: string, caPem: string | undefined, headers?: () => Record<string, string>): Transport {
  const url = new URL(to);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port);
  switch (url.protocol) {
    case 'syslog+tcp:':
      return new StreamTransport(() => netConnect({ host, port }), 'connect');
    case 'syslog+tls:':
      // Verified against the system's CAs and the one the config names; never unverified.
      return new StreamTransport(
        () => tlsConnect({ host, port, servername: isAddress(host) ? undefined : host, ca: trusted(caPem), rejectUnauthorized: true }),
        'secureConnect',
      );
    case 'syslog+udp:':
      return new DatagramTransport(host, port);
    case 'https:':
      return new HttpsTransport(url, caPem, headers);
    default:
      throw new Error(`no transport for ${url.protocol}`);
  }
}

function trusted(caPem: string | undefined): string[] | undefined {
  return caPem === undefined ? undefined : [...rootCertificates, caPem];
}

function isAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** A failure in a few words: the code (ECONNREFUSED) or the message's first line, bounded. */
export function failureText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code ?? String(e.message ?? err).split('\n')[0] ?? 'failed').slice(0, 120);
}

/** One connection kept open between batches; a broken one is dropped and the next send reconnects. */
class StreamTransport implements Transport {
  #socket: Socket | null = null;
  readonly #open: () => Socket;
  readonly #ready: 'connect' | 'secureConnect';

  constructor(open: () => Socket, ready: 'connect' | 'secureConnect') {
    this.#open = open;
    this.#ready = ready;
  }

  /**
   * The batches the current connection took, oldest first, each its mark and when it was written:
   * those within BREAK_WINDOW_MS are kept (older ones are taken as read), so a break can name the
   * oldest that may have been lost with it.
   */
  #written: Array<{ mark: Cursor; at: number }> = [];
  /** The receiver closed the connection soon after a write: the next send says so, from this mark. */
  #broke: Cursor | null = null;

  checkBroken(): void {
    if (this.#broke === null) return;
    const from = this.#broke;
    this.#broke = null;
    throw unsure(Object.assign(new Error('the receiver closed the connection after the last batch'), { code: 'ECONNRESET' }), from);
  }

  async send(messages: readonly Buffer[], mark: Cursor): Promise<void> {
    this.checkBroken();
    const socket = this.#socket ?? (await this.#connect());
    try {
      await new Promise<void>((resolve, reject) => {
        socket.write(Buffer.concat(messages), (err) => (err ? reject(err) : resolve()));
      });
      const now = Date.now();
      this.#written = this.#written.filter((w) => now - w.at < BREAK_WINDOW_MS);
      this.#written.push({ mark, at: now });
    } catch (err) {
      // A write refused just after others went: those may not have been read either.
      const from = this.#oldestAtRisk();
      this.#drop(socket, false);
      this.#broke = null;
      throw from !== null ? unsure(err, from) : err;
    }
  }

  /** The mark of the oldest batch written on this connection within BREAK_WINDOW_MS (null: none). */
  #oldestAtRisk(): Cursor | null {
    const now = Date.now();
    return this.#written.find((w) => now - w.at < BREAK_WINDOW_MS)?.mark ?? null;
  }

  #connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = this.#open();
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), TIMEOUT_MS);
      socket.once(this.#ready, () => {
        clearTimeout(timer);
        this.#socket = socket;
        this.#written = [];
        // A receiver that closes or errs later: forget it, so the next batch reconnects.
        socket.on('error', () => this.#drop(socket, true));
        socket.on('close', (hadError) => this.#drop(socket, hadError));
        // Receivers do not answer; anything they send is read and ignored.
        socket.resume();
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /**
   * Forgets a connection. `failed`: it ended in an error (a reset): a receiver that closes cleanly
   * (FIN) has read what came before (a socket closed with unread data resets instead), so only a
   * failure soon after a write makes the next send `unsure`.
   */
  #drop(socket: Socket, failed: boolean): void {
    socket.destroy();
    if (this.#socket !== socket) return;
    this.#socket = null;
    if (failed) this.#broke = this.#oldestAtRisk();
    this.#written = [];
  }

  close(): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#written = [];
    socket?.end();
  }
}

/** One datagram per message (RFC 5426). Loss on the way is UDP's: nothing can tell. */
class DatagramTransport implements Transport {
  readonly #socket: UdpSocket;
  readonly #host: string;
  readonly #port: number;

  constructor(host: string, port: number) {
    this.#socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    this.#socket.on('error', () => undefined);
    this.#socket.unref();
    this.#host = host;
    this.#port = port;
  }

  async send(messages: readonly Buffer[]): Promise<void> {
    for (const message of messages) {
      await new Promise<void>((resolve, reject) => this.#socket.send(message, this.#port, this.#host, (err) => (err ? reject(err) : resolve())));
    }
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }
}

/** One POST per batch: a JSON array of the batch's events; any 2xx is delivered. */
class HttpsTransport implements Transport {
  readonly #url: URL;
  readonly #ca: string[] | undefined;
  readonly #headers: () => Record<string, string>;

  constructor(url: URL, caPem: string | undefined, headers: (() => Record<string, string>) | undefined) {
    this.#url = url;
    this.#ca = trusted(caPem);
    this.#headers = headers ?? (() => ({}));
  }

  async send(messages: readonly Buffer[]): Promise<void> {
    // Read first: a secret that cannot be read is this batch's failure, before anything is sent.
    const own = this.#headers();
    const body = Buffer.concat([Buffer.from('['), ...messages.flatMap((m, i) => (i === 0 ? [m] : [Buffer.from(','), m])), Buffer.from(']')]);
    return new Promise((resolve, reject) => {
      const req = request(
        this.#url,
        {
          method: 'POST',
          headers: { ...own, 'content-type': 'application/json', 'content-length': body.length },
          ca: this.#ca,
          rejectUnauthorized: true,
          timeout: TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) res.on('end', resolve);
          else reject(Object.assign(new Error(`answered ${status}`), { code: `HTTP ${status}` }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {}
}
