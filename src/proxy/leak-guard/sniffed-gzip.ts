import { Transform, type TransformCallback } from 'node:stream';
import { zlib } from '../../builtins.ts';
import { ProxyError } from '../../errors/index.ts';
import { MAX_DECODED_BYTES } from './encoding.ts';
import type { HeldNeedles } from './held.ts';
import { MessageScan } from './message-scan.ts';

// A gzip file in a body that does not say so (no Content-Encoding: a download, an uploaded file read
// back, an `application/gzip` or octet-stream answer): its client gunzips it, so the leak guard
// does too. Found by its first bytes (RFC 1952's magic and deflate method: 1f 8b 08), whatever the
// type. The bytes go to the client as they came (a download's checksum must hold: npm's integrity,
// a container layer's digest), each part only once what it decodes to is searched and holds no
// start of a needle; a needle inside refuses the answer (whole) or cuts it (streamed) before the
// bytes that hold it leave: keyway cannot redact inside a compressed file without changing it.
// One layer is decoded (a .tar.gz's tar is searched; a gzip inside it is not), up to
// MAX_DECODED_BYTES (past it, cut: a compression bomb would otherwise cost keyway a core); a file
// that says gzip and does not decode is refused as a corrupt encoding is.

const MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

/** Compressed bytes held back while what they decode to may still complete a needle: past this, cut. */
const MAX_PENDING = 16 * 1024 * 1024;

/** Whether `data` (a body's first bytes) may begin a gzip file: its magic, or a start of it when fewer than three bytes came. */
export function mayBeGzip(data: Buffer): boolean {
  const n = Math.min(data.length, MAGIC.length);
  return n > 0 && data.compare(MAGIC, 0, n, 0, n) === 0;
}

function isGzip(data: Buffer): boolean {
  return data.length >= MAGIC.length && data.compare(MAGIC, 0, MAGIC.length, 0, MAGIC.length) === 0;
}

/** What the client gets when a gzip file holds a needle. */
function leakInGzip(): ProxyError {
  return new ProxyError(
    'upstream_unreachable',
    "the upstream's answer is a gzip file (without Content-Encoding) that holds a secret keyway put on the request or holds for this agent; keyway refused it rather than change the file",
  );
}

function undecodable(cause: unknown): ProxyError {
  if (cause instanceof ProxyError) return cause;
  return new ProxyError('upstream_unreachable', "the upstream's answer begins as a gzip file and does not decode; keyway refused what it could not search", {
    cause,
  });
}

export interface GzipNeedles {
  readonly needles: readonly Buffer[];
  readonly held?: HeldNeedles | undefined;
  onRedacted(count: number): void;
}

/** A whole body: throws the refusal when it is a gzip file whose content holds a needle (or does not decode). */
export function checkWholeGzip(body: Buffer, redact: GzipNeedles): void {
  if (!isGzip(body)) return;
  let decoded: Buffer;
  try {
    decoded = zlib().gunzipSync(body, { finishFlush: zlib().constants.Z_SYNC_FLUSH, maxOutputLength: MAX_DECODED_BYTES });
  } catch (err) {
    throw undecodable(err);
  }
  const scan = new MessageScan(redact.needles, redact.held, 'mask');
  scan.scan(decoded);
  scan.end();
  if (scan.redactions > 0) {
    redact.onRedacted(scan.redactions);
    throw leakInGzip();
  }
}

/**
 * A streamed body as it came, searched as a gzip file when it begins as one: each chunk goes on once
 * what it decodes to is searched and the search holds nothing back (no needle may be beginning).
 */
export class GzipWatch extends Transform {
  readonly #redact: GzipNeedles;
  #mode: 'sniff' | 'plain' | 'gzip' = 'sniff';
  #head: Buffer = Buffer.alloc(0);
  #decoder: Transform | undefined;
  #scan: MessageScan | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Decoded bytes scanned in, and let out by the scan (mask style: equal once it holds nothing). */
  #in = 0;
  #out = 0;
  #failure: Error | undefined;
  #ended = false;

  constructor(redact: GzipNeedles) {
    super();
    this.#redact = redact;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#mode === 'plain') return done(null, chunk);
    if (this.#mode === 'sniff') {
      const data = this.#head.length > 0 ? Buffer.concat([this.#head, chunk]) : chunk;
      if (data.length < MAGIC.length && mayBeGzip(data)) {
        this.#head = Buffer.from(data);
        return done();
      }
      this.#head = Buffer.alloc(0);
      if (!isGzip(data)) {
        this.#mode = 'plain';
        return done(null, data);
      }
      this.#start();
      chunk = data;
    }
    if (this.#ended) {
      // Past the end of the gzip data (trailing bytes no decoder reads): what was held goes first.
      this.#release();
      return done(null, chunk);
    }
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes > MAX_PENDING) return done(leakInGzip());
    this.#decoder!.write(chunk, () => this.#settle(done));
  }

  override _flush(done: TransformCallback): void {
    if (this.#mode === 'sniff') return done(null, this.#head.length > 0 ? this.#head : undefined);
    if (this.#mode === 'plain') return done();
    const finish = () => {
      if (this.#failure !== undefined) return done(this.#failure);
      this.#scan!.end();
      if (this.#found()) return done(leakInGzip());
      this.#release();
      done();
    };
    if (this.#ended || this.#failure !== undefined) return finish();
    this.#decoder!.once('end', finish);
    this.#decoder!.once('error', finish);
    this.#decoder!.end();
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    this.#decoder?.destroy();
    done(err);
  }

  #start(): void {
    this.#mode = 'gzip';
    this.#scan = new MessageScan(this.#redact.needles, this.#redact.held, 'mask');
    const decoder = zlib().createGunzip({ finishFlush: zlib().constants.Z_SYNC_FLUSH });
    decoder.on('data', (decoded: Buffer) => {
      this.#in += decoded.length;
      if (this.#in > MAX_DECODED_BYTES) {
        this.#failure ??= new ProxyError(
          'upstream_unreachable',
          `the upstream's gzip file decodes to more than ${MAX_DECODED_BYTES / (1024 * 1024)} MiB; keyway cut it rather than pass bytes it has not searched`,
        );
        return;
      }
      for (const piece of this.#scan!.scan(decoded)) this.#out += piece.length;
    });
    decoder.once('end', () => {
      this.#ended = true;
    });
    decoder.once('error', (err) => {
      this.#failure ??= undecodable(err);
    });
    this.#decoder = decoder;
  }

  /** After a chunk was decoded: the refusal, or its bytes (and those held before) out when the search holds nothing. */
  #settle(done: TransformCallback): void {
    const decoder = this.#decoder!;
    // Output the decoder has pushed but not yet handed to 'data' (it is flowing: rare): wait for it.
    if (decoder.readableLength > 0 && !this.#ended && this.#failure === undefined) {
      setImmediate(() => this.#settle(done));
      return;
    }
    if (this.#found()) return done(leakInGzip());
    if (this.#failure !== undefined) return done(this.#failure);
    if (this.#in === this.#out) this.#release();
    done();
  }

  #found(): boolean {
    const count = this.#scan?.redactions ?? 0;
    if (count === 0) return false;
    this.#redact.onRedacted(count);
    return true;
  }

  #release(): void {
    for (const piece of this.#pending) this.push(piece);
    this.#pending = [];
    this.#pendingBytes = 0;
  }
}
