import { Transform, type TransformCallback } from 'node:stream';
import { zlib } from '../../builtins.ts';
import { ProxyError } from '../../errors/index.ts';

// Compressed response bodies under the leak guard. keyway decodes what the upstream compressed,
// scans the decoded bytes, and sends them to the agent decoded (no Content-Encoding): every HTTP
// client accepts an identity body, and re-compressing would cost CPU for a loopback hop.
// Decoding, rather than asking the upstream for identity only, because an upstream may compress
// whatever was asked (objects stored with their encoding, misbehaving servers): asking would still
// leave a compressed body to deal with. The agent's Accept-Encoding is kept, narrowed to the
// codings keyway can decode, so the upstream leg stays compressed.

// Lenient at the end, as fetch is (undici): an empty body (a 204-like answer that still says gzip)
// or one cut short decodes to what it holds instead of failing. Corrupt data still fails, closed.
// node:zlib is loaded at the first encoded answer (builtins.ts), not with the proxy.

/** Content codings keyway decodes (RFC 9110 8.4.1; x-gzip is gzip's old name). */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib().createGunzip({ finishFlush: zlib().constants.Z_SYNC_FLUSH }),
  'x-gzip': () => zlib().createGunzip({ finishFlush: zlib().constants.Z_SYNC_FLUSH }),
  // zlib-wrapped, as RFC 9110 says; createUnzip also takes gzip. Raw deflate (an old server bug)
  // fails to decode, and fails closed.
  deflate: () => zlib().createUnzip({ finishFlush: zlib().constants.Z_SYNC_FLUSH }),
  br: () => zlib().createBrotliDecompress({ finishFlush: zlib().constants.BROTLI_OPERATION_FLUSH }),
  zstd: () => zlib().createZstdDecompress({ finishFlush: zlib().constants.ZSTD_e_flush }),
};

/** More layers than this (gzip of gzip of ...) is refused: no real server stacks them. */
const MAX_LAYERS = 2;

/**
 * A cap on decoded bytes per response. Decoding streams with backpressure, so memory stays flat
 * whatever the size; the cap bounds the CPU an agent can make keyway spend on a compression bomb
 * (a few KiB of brotli that decode to gigabytes). Past it the response is cut: the agent gets an
 * incomplete body, never bytes that were not scanned.
 */
export const MAX_DECODED_BYTES = 256 * 1024 * 1024;

/** The codings applied to a body, first applied first, without identity; lower case. */
export function contentCodings(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/**
 * The stages that undo `codings` (last applied, first undone), then a byte counter. Throws the
 * error keyway answers with when a coding cannot be decoded: a body it cannot read is not relayed.
 */
export function decodingStages(codings: readonly string[], maxBytes = MAX_DECODED_BYTES): Transform[] {
  if (codings.length > MAX_LAYERS) {
    throw new ProxyError(
      'upstream_unreachable',
      `the upstream's response has ${codings.length} content codings; keyway decodes at most ${MAX_LAYERS} to scan it for the secret`,
    );
  }
  const unknown = codings.find((c) => !(c in DECODERS));
  if (unknown !== undefined) {
    // The value is not quoted: header values from upstream never go into an error body.
    throw new ProxyError('upstream_unreachable', "the upstream's response has a Content-Encoding keyway cannot decode to scan it for the secret", {
      hint: 'keyway decodes gzip, deflate, br and zstd',
    });
  }
  return [...codings.toReversed().map((coding) => DECODERS[coding]!()), new ByteCap(maxBytes)];
}

/**
 * The agent's Accept-Encoding narrowed to what keyway decodes. An agent that asks for nothing gets
 * nothing asked; one whose every coding is unknown asks for identity.
 */
export function decodableAcceptEncoding(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const kept = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => {
      const coding = item.split(';')[0]!.trim().toLowerCase();
      return coding in DECODERS || coding === 'identity';
    });
  return kept.length ? kept.join(', ') : 'identity';
}

/** What a decoder's failure becomes: zlib's own message says little and is not ours to show. */
export function decodeFailure(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError('upstream_unreachable', "the upstream's compressed body could not be decoded to scan it for the secret", { cause: err });
}

/** Errors once more than `max` bytes have passed. */
class ByteCap extends Transform {
  readonly #max: number;
  #seen = 0;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#max) {
      done(
        new ProxyError(
          'upstream_unreachable',
          `the upstream's compressed body decodes to more than ${this.#max / (1024 * 1024)} MiB; keyway cut it rather than pass bytes it has not scanned`,
        ),
      );
      return;
    }
    done(null, chunk);
  }
}
