import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { LRUCache } from 'lru-cache';
import { ProxyError } from '../../../errors/index.ts';
import type { Credential } from '../../material.ts';

// Signature Version 4 with AWS's own implementation (@smithy/signature-v4, the signer of the AWS
// SDK for JavaScript): keyway builds the request to sign from what it will send, and takes back
// only the headers the signature adds.

type AwsCredential = Extract<Credential, { kind: 'aws' }>;

export interface RequestToSign {
  method: string;
  /** The Host header as it goes upstream (host, or host:port). */
  host: string;
  /** Path and query as they go upstream (already percent-encoded once). */
  path: string;
  /** Headers as they go upstream, lower-case names. */
  headers: Readonly<Record<string, string | string[]>>;
  /**
   * The headers to sign: the ones the client signed (what the upstream may check), or undefined to
   * sign every header the signer may (a request the client did not sign at all).
   */
  signedHeaders: readonly string[] | undefined;
  /** The payload hash to sign with: the body's SHA-256 (hex), or UNSIGNED-PAYLOAD and its kin. */
  payloadHash: string;
}

export interface SigningScope {
  region: string;
  service: string;
}

/** What goes on the outgoing request: set each (undefined: remove). */
export interface SignatureHeaders {
  authorization: string;
  'x-amz-date': string;
  'x-amz-security-token': string | undefined;
  'x-amz-content-sha256': string;
}

/** The headers, and what an aws-chunked body's chunk signatures chain from (chunked.ts). */
export interface SignedHead extends SignatureHeaders {
  /** The request's signature (64 hex digits): the seed of a chunk chain. */
  signature: string;
  /** DATE/REGION/SERVICE/aws4_request, as in the Authorization header. */
  credentialScope: string;
}

// Headers keyway itself adds to what it signs, whatever the client signed.
const ALWAYS_SIGNED = ['host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'];

// A signer per key, region and service: each caches its derived signing keys (one per day).
const signers = new LRUCache<string, SignatureV4>({ max: 256 });

function signerFor(credential: AwsCredential, scope: SigningScope): SignatureV4 {
  const key = `${credential.accessKeyId}\0${credential.secretAccessKey}\0${credential.sessionToken ?? ''}\0${scope.region}\0${scope.service}`;
  let signer = signers.get(key);
  if (!signer) {
    signer = new SignatureV4({
      credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey, sessionToken: credential.sessionToken },
      region: scope.region,
      service: scope.service,
      sha256: Hash.bind(null, 'sha256'),
      // S3 signs the path as sent; every other service signs it URI-encoded once more.
      uriEscapePath: scope.service !== 's3',
      applyChecksum: false,
    });
    signers.set(key, signer);
  }
  return signer;
}

export async function signAwsRequest(request: RequestToSign, credential: AwsCredential, scope: SigningScope, now: Date): Promise<SignedHead> {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const query = parseQuery(q === -1 ? '' : request.path.slice(q + 1));
  const wanted = request.signedHeaders === undefined ? undefined : new Set([...request.signedHeaders, ...ALWAYS_SIGNED]);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (name === 'host' || name === 'authorization' || name === 'x-amz-security-token' || name === 'x-amz-date') continue;
    if (wanted !== undefined && !wanted.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  headers['host'] = request.host;
  headers['x-amz-content-sha256'] = request.payloadHash;
  const signed = await signerFor(credential, scope).sign(
    { method: request.method, protocol: 'https:', hostname: request.host, path, query, headers },
    // Headers the client signed are signed again even where the signer would not sign them itself
    // (user-agent, say): the upstream checks exactly the list in SignedHeaders.
    { signingDate: now, ...(wanted !== undefined ? { signableHeaders: wanted } : {}) },
  );
  const out = signed.headers;
  const authorization = out['authorization']!;
  const amzDate = out['x-amz-date']!;
  return {
    authorization,
    signature: authorization.slice(authorization.lastIndexOf('=') + 1),
    credentialScope: `${amzDate.slice(0, 8)}/${scope.region}/${scope.service}/aws4_request`,
    'x-amz-date': amzDate,
    'x-amz-security-token': out['x-amz-security-token'],
    'x-amz-content-sha256': request.payloadHash,
  };
}

/**
 * Signs any string to sign (an aws-chunked chunk's, a trailer's) with the key derived for `scope`
 * on the day of `date`: the request's own signing date, so a chain started on one day stays on it.
 */
export function stringSigner(credential: AwsCredential, scope: SigningScope, date: Date): (stringToSign: string) => Promise<string> {
  const signer = signerFor(credential, scope);
  return (stringToSign) => signer.sign(stringToSign, { signingDate: date, signingRegion: scope.region, signingService: scope.service });
}

/** A query string as SigV4 canonicalises it: percent-decoded names and values (`+` is a plus, not a space). */
function parseQuery(text: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  if (text === '') return query;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
      value = decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1));
    } catch {
      throw new ProxyError('signature_unsupported', 'the query string has an escape that does not decode; keyway cannot sign it as AWS would read it');
    }
    const had = query[name];
    query[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return query;
}

export interface RequestToPresign {
  method: string;
  host: string;
  /** Path and query as they go upstream, the client's own presigned parameters still in it. */
  path: string;
  headers: Readonly<Record<string, string | string[]>>;
}

// The query parameters a presigned URL's signature is made of: the client's are dropped, keyway's go in.
const PRESIGN_PARAMS = new Set([
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-signedheaders',
  'x-amz-signature',
  'x-amz-security-token',
]);
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

/**
 * A presigned URL (the signature in the query) signed again in the query, for the same headers and
 * lifetime the client's named, from now. Returns the path and query to send.
 */
export async function presignAwsRequest(request: RequestToPresign, credential: AwsCredential, scope: SigningScope, now: Date): Promise<string> {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const given = parseQuery(q === -1 ? '' : request.path.slice(q + 1));
  const param = (name: string) => {
    const key = Object.keys(given).find((k) => k.toLowerCase() === name);
    const value = key === undefined ? undefined : given[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const expires = Number(param('x-amz-expires') ?? 900);
  if (!Number.isSafeInteger(expires) || expires < 1 || expires > MAX_PRESIGNED_SECONDS) {
    throw new ProxyError('signature_unsupported', 'a presigned URL whose X-Amz-Expires is not a whole number of seconds up to a week');
  }
  const signedHeaders = (param('x-amz-signedheaders') ?? 'host').toLowerCase().split(';').filter(Boolean);
  const payload = param('x-amz-content-sha256');
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(given)) {
    const lower = name.toLowerCase();
    if (!PRESIGN_PARAMS.has(lower) && lower !== 'x-amz-content-sha256') query[name] = value;
  }
  const headers: Record<string, string> = { host: request.host };
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (name !== 'host' && value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  // The payload hash: the one the URL names (put back into the query as the client had it), else
  // S3's UNSIGNED-PAYLOAD (neither sent nor signed as a header), else an empty body's.
  const unhoisted = new Set<string>();
  if (payload !== undefined) headers['x-amz-content-sha256'] = payload;
  else if (scope.service === 's3') {
    headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    unhoisted.add('x-amz-content-sha256');
  }
  const signed = await signerFor(credential, scope).presign(
    { method: request.method, protocol: 'https:', hostname: request.host, path, query, headers },
    {
      signingDate: now,
      expiresIn: expires,
      signableHeaders: new Set(signedHeaders),
      unhoistableHeaders: unhoisted,
      unsignableHeaders: unhoisted,
    },
  );
  return `${path}?${serializeQuery(signed.query ?? {})}`;
}

/** A query as AWS reads it back: each name and value percent-encoded (RFC 3986 unreserved kept). */
function serializeQuery(query: Record<string, string | string[] | null>): string {
  const encode = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) parts.push(`${encode(name)}=${encode(one)}`);
  }
  return parts.join('&');
}
