import { isLoopbackAddress } from './loopback.ts';

// What the running keyway needs of secret sources (config/secret-sources.ts): a grant's reference
// to an item, its key and its name in messages, and the endpoint rule the clients check again.
// A file of its own, without zod: the proxy imports it at start, and the schemas stay with the
// config loader (docs/perf/startup.md).

/**
 * A source's own endpoint: https, or http on loopback only (a local emulator, a Vault agent on the
 * same machine), since the secret comes back in the answer.
 */
export function endpointAllowed(value: string): boolean {
  try {
    const url = new URL(value);
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return false;
    return url.protocol === 'https:' || (url.protocol === 'http:' && (url.hostname === 'localhost' || isLoopbackAddress(url.hostname)));
  } catch {
    return false;
  }
}

export const ENDPOINT_RULE = 'expected an https:// URL (http:// only on loopback), with no user, query or fragment';

/** A grant's secret held by a source: `{from: NAME, id: ITEM, key: FIELD, version: V}`. */
export interface SourcedSecret {
  readonly kind: 'source';
  /** The source's name under secret_sources. */
  readonly from: string;
  /** The item: a secret's name or ARN, a parameter's name, a KV path. */
  readonly id: string;
  /** A field of a JSON secret (a KV v2 secret's field): the field's value is the secret. */
  readonly key: string | undefined;
  /** A version or stage (AWS: a version stage such as AWSCURRENT; KV: a version number). */
  readonly version: string | undefined;
}

/** A key for one item of one source: a reload that changes what it names drops the cached value. */
export function sourcedKey(secret: SourcedSecret): string {
  return JSON.stringify([secret.from, secret.id, secret.key ?? null, secret.version ?? null]);
}

/** How the item is named in messages and listings (never a value): `aws: prod/github#token`. */
export function describeSourced(secret: SourcedSecret): string {
  return `${secret.from}: ${secret.id}${secret.key ? `#${secret.key}` : ''}${secret.version ? ` (version ${secret.version})` : ''}`;
}
