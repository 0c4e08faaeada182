import { type Dispatcher, requestUrl } from '../../net/undici.ts';

// The one HTTP client for the issuers keyway asks for a token or a key: OAuth token endpoints
// (refresh, device flow, the JWT bearer grant), dpop's and token exchange's endpoints, GitHub's
// installation tokens and STS AssumeRole. Here is what they share, so it is done once and right:
// the grant's timeout and egress dispatcher, a bounded read of the answer, and transport failures
// that name the issuer's origin and an error code, nothing that was sent or answered. What differs
// stays with each caller: its body and headers (a DPoP proof, a SigV4 signature, an app JWT), what
// a status means, how the answer reads (JSON, XML), and the words of its errors.

/** A form or a JSON body, with its content-type. */
export type TokenBody = { readonly form: URLSearchParams } | { readonly json: unknown };

export interface TokenPost {
  readonly url: string | URL;
  /** GET for GitHub's installation lookup only: it needs all the rest of a token POST. */
  readonly method?: 'POST' | 'GET';
  /** Lower-case names. A content-type here wins over the body's: STS signs the one it sends. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: TokenBody | undefined;
}

/** How the call leaves; a grant's issue or mint context is one as it is. */
export interface TokenPostVia {
  /** For the answer's headers, for its body, and for the whole call. */
  readonly timeoutMs: number;
  /** The egress dispatcher; undefined: straight out. */
  readonly dispatcher?: Dispatcher | undefined;
}

export interface TokenAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
}

/** A token answer is a few hundred bytes, a few KiB with an id_token or an STS session token; more is not one. */
export const MAX_ANSWER_BYTES = 64 * 1024;

export type TokenPostFailureKind = 'timeout' | 'unreachable' | 'oversize';

/**
 * The call failed before an answer could be read. Its message is `<origin> did not answer within
 * N ms`, `<origin> could not be reached (CODE)` or `<origin> answered with more than 64 KiB`, for a
 * caller to put in its own words. The transport's error is not kept as its cause: one can quote
 * the URL (an invalid URL's `input`), and a cause is printed wherever the error is.
 */
export class TokenPostFailure extends Error {
  override readonly name = 'TokenPostFailure';
  readonly kind: TokenPostFailureKind;
  /** safeOrigin of the URL. */
  readonly where: string;
  /** The transport's error code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, TimeoutError…), or 'error'. */
  readonly code: string;

  constructor(kind: TokenPostFailureKind, where: string, code: string, message: string) {
    super(message);
    this.kind = kind;
    this.where = where;
    this.code = code;
  }
}

/** What a caller throws for a failed call: its own error, in its own words. */
export type FailureAs = (failure: TokenPostFailure) => Error;

/** Sends the call and reads the whole answer, whatever its status; throws only what `failedAs` makes. */
export async function postToken(post: TokenPost, via: TokenPostVia, failedAs: FailureAs): Promise<TokenAnswer> {
  const where = safeOrigin(String(post.url));
  const encoded = encode(post.body);
  try {
    const response = await requestUrl(post.url, {
      method: post.method ?? 'POST',
      headers: encoded === undefined ? post.headers : { 'content-type': encoded.contentType, ...post.headers },
      body: encoded?.text,
      dispatcher: via.dispatcher,
      headersTimeout: via.timeoutMs,
      bodyTimeout: via.timeoutMs,
      signal: AbortSignal.timeout(via.timeoutMs),
    });
    const text = await readBounded(response.body, where);
    return { status: response.statusCode, headers: response.headers as TokenAnswer['headers'], text };
  } catch (err) {
    throw failedAs(err instanceof TokenPostFailure ? err : transportFailure(err, where, via.timeoutMs));
  }
}

function encode(body: TokenBody | undefined): { text: string; contentType: string } | undefined {
  if (body === undefined) return undefined;
  if ('form' in body) return { text: body.form.toString(), contentType: 'application/x-www-form-urlencoded' };
  return { text: JSON.stringify(body.json), contentType: 'application/json' };
}

async function readBounded(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, where: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      throw new TokenPostFailure('oversize', where, 'oversize', `${where} answered with more than 64 KiB`);
    }
    chunks.push(chunk);
  }
  // TextDecoder, as undici's body.text(): a byte order mark before the JSON is dropped, not parsed.
  return new TextDecoder().decode(Buffer.concat(chunks));
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'TimeoutError', 'AbortError']);

function transportFailure(err: unknown, where: string, timeoutMs: number): TokenPostFailure {
  // The timeout's abort rejects with a DOMException, whose code is a legacy number (23): its name
  // says what happened. Read code first, it was told as unreachable "(23)".
  const raw = err instanceof DOMException ? err.name : ((err as { code?: unknown } | null)?.code ?? (err as { name?: unknown } | null)?.name);
  // Only a code's shape is let through: whatever else an error carries could quote the request.
  const code = typeof raw === 'string' && /^[\w.-]{1,64}$/.test(raw) ? raw : 'error';
  if (TIMEOUT_CODES.has(code)) return new TokenPostFailure('timeout', where, code, `${where} did not answer within ${timeoutMs} ms`);
  return new TokenPostFailure('unreachable', where, code, `${where} could not be reached (${code})`);
}

/** Basic client authentication (RFC 6749 2.3.1): id and secret form-encoded before base64, as the RFC asks. */
export function basicClientAuth(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/** An issuer's error code as it may appear in a message: word characters, 64 at most (the rest is the server's free text). */
export function printableErrorCode(code: string): string {
  return code.replace(/[^\w.-]/g, '').slice(0, 64);
}

/** Scheme, host and port only: a token URL may carry a tenant or a key in its path or query. */
export function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
