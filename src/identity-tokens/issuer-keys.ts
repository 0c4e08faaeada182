import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import { isLoopbackAddress } from '../config/loopback.ts';
import { requestUrl, type Dispatcher } from '../net/undici.ts';

// One issuer's public keys (a JWK Set), from a file, a URL, or the URL its OpenID discovery document
// names. Kept in memory and fetched again every REFRESH_MS in the background (a failed fetch keeps
// the keys held); a token signed with a key id keyway does not hold makes it fetch at once, at most
// once per REFETCH_COOLDOWN_MS, so an issuer's key rotation is picked up on its first new token
// while a stream of made-up key ids costs one fetch per cooldown.

export const REFRESH_MS = 10 * 60_000;
export const REFETCH_COOLDOWN_MS = 30_000;
/** The longest keyway waits for an issuer's keys or discovery document. */
export const FETCH_TIMEOUT_MS = 5_000;
/** A JWK Set or discovery document larger than this is refused (a real one is a few KiB). */
const MAX_DOCUMENT = 256 * 1024;

export interface KeySource {
  readonly issuer: string;
  /** The configured jwks: an https URL or a file path already resolved against the home; undefined: discovery. */
  readonly jwks: string | undefined;
  readonly dispatcher: Dispatcher;
  /** Throws for a key URL keyway may not fetch: its own listeners, as for any destination (KeyUrlGuard). */
  readonly guard?: KeyUrlGuard | undefined;
  readonly now?: () => number;
}

/**
 * Refuses a URL before it is fetched (throws, saying why). The issuer's URLs, and the jwks_uri its
 * discovery document names, are judged as an agent's destination is: an admin port reached there
 * would answer keyway, and what it said would come back to the agent in the refusal.
 */
export type KeyUrlGuard = (url: URL) => Promise<void>;

/** Why the keys could not be had: the token is neither accepted nor refused on its merits. */
export class KeysUnavailable extends Error {}

export class IssuerKeys {
  readonly #source: KeySource;
  #keys: JSONWebKeySet | undefined;
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #inFlight: Promise<JSONWebKeySet> | undefined;
  #lastError: string | undefined;

  constructor(source: KeySource) {
    this.#source = source;
  }

  /**
   * The keys held, fetched first if there are none yet; a background refresh when they are old.
   * With none held and the last fetch failed within the cooldown, that failure again, without a
   * fetch: a stream of tokens for an issuer that is down costs one fetch per cooldown.
   */
  async keys(): Promise<JSONWebKeySet> {
    const now = this.#now();
    if (this.#keys === undefined) {
      if (this.#inFlight === undefined && this.#lastError !== undefined && now - this.#attemptedAt <= REFETCH_COOLDOWN_MS) {
        throw new KeysUnavailable(`${this.#lastError} (the next try is ${REFETCH_COOLDOWN_MS / 1000} s after the last)`);
      }
      return this.#fetch();
    }
    if (now - this.#fetchedAt > REFRESH_MS && now - this.#attemptedAt > REFETCH_COOLDOWN_MS) void this.#fetch().catch(() => undefined);
    return this.#keys;
  }

  /** A token named a key not held: fetch again unless a fetch was tried within the cooldown. True if new keys came. */
  async refetch(): Promise<boolean> {
    if (this.#now() - this.#attemptedAt <= REFETCH_COOLDOWN_MS) return false;
    const before = this.#keys;
    try {
      return (await this.#fetch()) !== before;
    } catch {
      return false;
    }
  }

  /** What the last failed fetch said (keyway doctor), or undefined. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  #now(): number {
    return (this.#source.now ?? Date.now)();
  }

  #fetch(): Promise<JSONWebKeySet> {
    this.#inFlight ??= this.#load()
      .then(
        (keys) => {
          this.#keys = keys;
          this.#fetchedAt = this.#now();
          this.#lastError = undefined;
          return keys;
        },
        (err: unknown) => {
          this.#lastError = (err as Error).message;
          throw err;
        },
      )
      .finally(() => {
        this.#inFlight = undefined;
      });
    this.#attemptedAt = this.#now();
    return this.#inFlight;
  }

  async #load(): Promise<JSONWebKeySet> {
    const { jwks, issuer } = this.#source;
    if (jwks !== undefined && !/^https?:\/\//i.test(jwks)) {
      let text: string;
      try {
        text = await readFile(jwks, 'utf8');
      } catch (err) {
        throw new KeysUnavailable(`cannot read the key file ${jwks} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      return signingKeys(parseJson(text, jwks), jwks);
    }
    const url = jwks ?? (await this.#discover(issuer));
    return signingKeys(await getJson(url, this.#source), url);
  }

  /** OpenID discovery: the document at ISSUER/.well-known/openid-configuration names jwks_uri (and must name this issuer). */
  async #discover(issuer: string): Promise<string> {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const document = await getJson(url, this.#source);
    if (document['issuer'] !== issuer) throw new KeysUnavailable(`${url} is not the discovery document of ${issuer} (it names another issuer)`);
    const jwksUri = document['jwks_uri'];
    if (typeof jwksUri !== 'string' || !secureUrl(jwksUri)) throw new KeysUnavailable(`${url} names no https:// jwks_uri`);
    return jwksUri;
  }
}

/** The keys of a set that may verify a signature: public keys for signing (never a shared secret, `kty: oct`). */
export function signingKeys(document: Record<string, unknown>, where: string): JSONWebKeySet {
  const listed = document['keys'];
  if (!Array.isArray(listed)) throw new KeysUnavailable(`${where} is not a JWK Set (no "keys" list)`);
  const keys = listed.filter(
    (key): key is JSONWebKeySet['keys'][number] =>
      key !== null &&
      typeof key === 'object' &&
      typeof key.kty === 'string' &&
      key.kty !== 'oct' &&
      (key.use === undefined || key.use === 'sig') &&
      !('d' in key),
  );
  if (keys.length === 0) throw new KeysUnavailable(`${where} holds no public signing key`);
  return { keys };
}

function secureUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || (url.protocol === 'http:' && (url.hostname === 'localhost' || isLoopbackAddress(url.hostname.replace(/^\[|\]$/g, ''))));
  } catch {
    return false;
  }
}

async function getJson(url: string, { dispatcher, guard }: Pick<KeySource, 'dispatcher' | 'guard'>): Promise<Record<string, unknown>> {
  const where = originOf(url);
  try {
    await guard?.(new URL(url));
  } catch (err) {
    // The guard's words only (a ProxyError's message: the host and port, why they are refused).
    throw new KeysUnavailable(`${where} is refused: ${(err as Error).message}`);
  }
  let answer: Awaited<ReturnType<typeof requestUrl>>;
  try {
    answer = await requestUrl(url, {
      method: 'GET',
      dispatcher,
      headers: { accept: 'application/json' },
      headersTimeout: FETCH_TIMEOUT_MS,
      bodyTimeout: FETCH_TIMEOUT_MS,
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (err) {
    // AbortSignal.timeout's DOMException has a numeric code: its name says what happened.
    const { name } = err as Error;
    const code = name === 'TimeoutError' || name === 'AbortError' ? name : ((err as NodeJS.ErrnoException).code ?? name);
    const slow = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'TimeoutError' || code === 'AbortError';
    throw new KeysUnavailable(slow ? `${where} did not answer within ${FETCH_TIMEOUT_MS / 1000} s` : `${where} could not be reached (${code})`);
  }
  if (answer.statusCode !== 200) {
    await answer.body.dump().catch(() => undefined);
    throw new KeysUnavailable(`${where} answered ${answer.statusCode}`);
  }
  let text = '';
  try {
    for await (const chunk of answer.body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.length > MAX_DOCUMENT) {
        answer.body.destroy();
        throw new KeysUnavailable(`${where} answered with a document over ${MAX_DOCUMENT / 1024} KiB`);
      }
    }
  } catch (err) {
    if (err instanceof KeysUnavailable) throw err;
    throw new KeysUnavailable(`${where} stopped answering (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`);
  }
  return parseJson(text, where);
}

function parseJson(text: string, where: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // said below
  }
  throw new KeysUnavailable(`${where} is not a JSON object`);
}

/** Scheme, host and path of a URL: never its query, which may carry a credential. */
function originOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return 'the key URL';
  }
}
