import type { Hash } from '@smithy/hash-node';
import type { SignatureV4 } from '@smithy/signature-v4';
import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ProxyError } from '../../../../errors/index.ts';
import type { Credential } from '../../../material.ts';
import { canonicalHeaders, canonicalPath, escapeUri, canonicalQuery, canonicalRequest, parseQuery } from './canonical.ts';

// Signature Version 4. Requests signed in headers, and aws-chunked chunks, are signed here with
// the canonical request canonical.ts builds (synchronously: it is on every request's path);
// presigned URLs, rarer, with AWS's own implementation (@smithy/signature-v4). Both take back only
// what the signature adds.

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

// Headers the client sent that keyway never signs: the ones the signature sets (the signer drops a
// Date header too, as smithy's does: X-Amz-Date is the date signed).
const NEVER_SIGNED = new Set(['host', 'authorization', 'x-amz-security-token', 'x-amz-date', 'date']);

export function signAwsRequest(request: RequestToSign, credential: AwsCredential, scope: SigningScope, now: Date): SignedHead {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const query = parseQuery(q === -1 ? '' : request.path.slice(q + 1));
  const wanted = request.signedHeaders === undefined ? undefined : new Set([...request.signedHeaders, ...ALWAYS_SIGNED]);
  const amzDate = longDate(now);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (NEVER_SIGNED.has(name)) continue;
    if (wanted !== undefined && !wanted.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  headers['host'] = request.host;
  headers['x-amz-content-sha256'] = request.payloadHash;
  headers['x-amz-date'] = amzDate;
  if (credential.sessionToken) headers['x-amz-security-token'] = credential.sessionToken;
  const credentialScope = `${amzDate.slice(0, 8)}/${scope.region}/${scope.service}/aws4_request`;
  // Headers the client signed are signed again even where the signer would not sign them itself
  // (user-agent, say): the upstream checks exactly the list in SignedHeaders.
  const canonical = canonicalRequest(
    request.method,
    canonicalPath(path, scope.service),
    canonicalQuery(query),
    canonicalHeaders(headers, wanted),
    request.payloadHash,
  );
  const signature = signString(credential, scope, amzDate, `AWS4-HMAC-SHA256\n${amzDate}\n${credentialScope}\n${hash('sha256', canonical.text, 'hex')}`);
  return {
    authorization: `AWS4-HMAC-SHA256 Credential=${credential.accessKeyId}/${credentialScope}, SignedHeaders=${canonical.signedHeaders}, Signature=${signature}`,
    signature,
    credentialScope,
    'x-amz-date': amzDate,
    'x-amz-security-token': credential.sessionToken || undefined,
    'x-amz-content-sha256': request.payloadHash,
  };
}

/**
 * Signs any string to sign (an aws-chunked chunk's, a trailer's) with the key derived for `scope`
 * on the day of `date`: the request's own signing date, so a chain started on one day stays on it.
 */
export function stringSigner(credential: AwsCredential, scope: SigningScope, date: Date): (stringToSign: string) => Promise<string> {
  const amzDate = longDate(date);
  return (stringToSign) => Promise.resolve(signString(credential, scope, amzDate, stringToSign));
}

/** 20130524T000000Z: the date as X-Amz-Date writes it (whole seconds, UTC). */
function longDate(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

// Derived signing keys, one per secret, day, region and service, as KeyObjects: an HMAC keyed with
// a KeyObject costs a seventh of one keyed with bytes on Node 24 (hmac-sha256.ts says why).
const signingKeys = new LRUCache<string, KeyObject>({ max: 256 });

function signString(credential: AwsCredential, scope: SigningScope, amzDate: string, stringToSign: string): string {
  const day = amzDate.slice(0, 8);
  const name = `${credential.secretAccessKey}\0${day}\0${scope.region}\0${scope.service}`;
  let key = signingKeys.get(name);
  if (!key) {
    let derived: Buffer = Buffer.from(`AWS4${credential.secretAccessKey}`, 'utf8');
    for (const part of [day, scope.region, scope.service, 'aws4_request']) derived = createHmac('sha256', derived).update(part, 'utf8').digest();
    key = createSecretKey(derived);
    signingKeys.set(name, key);
  }
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}

// Presigning is AWS's signer's: one per key, region and service, each caching its derived signing keys (one per day).
const signers = new LRUCache<string, SignatureV4>({ max: 256 });

// @smithy's signer and hash are loaded at the first presigned URL, not with keyway: a few
// requests ever need them, and loaded they hold ~1.7 MiB of V8 heap (code and source) for the life
// of the process (docs/perf/README.md, "Runtime settings").
let smithy: Promise<{ SignatureV4: typeof SignatureV4; Hash: typeof Hash }> | undefined;
const loadSmithy = () =>
  (smithy ??= Promise.all([import('@smithy/signature-v4'), import('@smithy/hash-node')]).then(([s, h]) => ({ SignatureV4: s.SignatureV4, Hash: h.Hash })));

async function signerFor(credential: AwsCredential, scope: SigningScope): Promise<SignatureV4> {
  const key = `${credential.accessKeyId}\0${credential.secretAccessKey}\0${credential.sessionToken ?? ''}\0${scope.region}\0${scope.service}`;
  let signer = signers.get(key);
  if (!signer) {
    const { SignatureV4, Hash } = await loadSmithy();
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
 * lifetime the client's named (at most `maxSeconds`), from now. Returns the path and query to send.
 */
export async function presignAwsRequest(
  request: RequestToPresign,
  credential: AwsCredential,
  scope: SigningScope,
  now: Date,
  maxSeconds: number,
): Promise<string> {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const given = parseQuery(q === -1 ? '' : request.path.slice(q + 1));
  const param = (name: string) => [...given].find(([k]) => k.toLowerCase() === name)?.[1][0];
  const asked = Number(param('x-amz-expires') ?? 900);
  if (!Number.isSafeInteger(asked) || asked < 1 || asked > MAX_PRESIGNED_SECONDS) {
    throw new ProxyError('signature_unsupported', 'a presigned URL whose X-Amz-Expires is not a whole number of seconds up to a week');
  }
  // The URL keyway signs is used once, now: it lives no longer than the grant allows (the agent never
  // holds it, but an upstream that echoes it would hand it over).
  const expires = Math.min(asked, maxSeconds);
  const signedHeaders = (param('x-amz-signedheaders') ?? 'host').toLowerCase().split(';').filter(Boolean);
  const payload = param('x-amz-content-sha256');
  const query: Record<string, string | string[]> = {};
  for (const [name, values] of given) {
    const lower = name.toLowerCase();
    if (!PRESIGN_PARAMS.has(lower) && lower !== 'x-amz-content-sha256') query[name] = values.length === 1 ? values[0]! : values;
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
  const signed = await (await signerFor(credential, scope)).presign(
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
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) parts.push(`${escapeUri(name)}=${escapeUri(one)}`);
  }
  return parts.join('&');
}
