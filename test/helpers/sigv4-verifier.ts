// Checks an AWS Signature Version 4 request the way AWS does, so that a test server (the S3 front,
// the STS double, the JSON-protocol double) refuses what AWS would refuse. The signatures are
// recomputed with @smithy/signature-v4, AWS's own implementation, over exactly what the client
// named: the SignedHeaders (or X-Amz-SignedHeaders) it listed, its query, its payload hash. What
// smithy does not do (reading the Authorization header, the 15-minute clock window, presigned
// expiry, x-amz-content-sha256 against the bytes received, aws-chunked chunk and trailer
// signatures, checksums) is done here, following S3's documentation.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { checksumOf, parseAwsChunked } from './aws-chunked.ts';

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: the request must carry this exact, signed x-amz-security-token. */
  sessionToken?: string;
}

export interface SignedRequest {
  method: string;
  /** Path and query exactly as on the request line. */
  url: string;
  /** Every header, each with all its values (IncomingMessage.headersDistinct). */
  headers: Record<string, string[] | undefined>;
  body: Buffer;
}

export interface VerifyOptions {
  /** The real keys; a function is read per request (keys issued later, by the STS double). */
  keys: AwsKey[] | (() => AwsKey[]);
  /** Refuse a credential scope for another region or service (AWS: AuthorizationHeaderMalformed). */
  region?: string;
  service?: string;
  now?: () => number;
}

export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

export interface Verified {
  ok: true;
  auth: 'header' | 'query';
  accessKeyId: string;
  region: string;
  service: string;
  signedHeaders: string[];
  /** x-amz-content-sha256 as sent ('sha256' for a hex hash, 'absent' with none; for presigned URLs, the hash used). */
  payloadMode: string;
  securityToken: boolean;
  /** The payload after aws-chunked decoding (the body itself otherwise). */
  payload: Buffer;
  /** aws-chunked bodies: the data chunk sizes, the trailer names, the checksum checked. */
  chunkSizes?: number[];
  trailers?: string[];
  checksum?: { name: string; verified: boolean };
}

export interface Refused {
  ok: false;
  status: number;
  code: string;
  reason: string;
  accessKeyId?: string;
  payloadMode?: string;
  signedHeaders?: string[];
}

const FIFTEEN_MINUTES = 15 * 60 * 1000;
const AUTH_QUERY = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];

const refuse = (status: number, code: string, reason: string, extra: Partial<Refused> = {}): Refused => ({ ok: false, status, code, reason, ...extra });
const mismatch = (reason: string, extra: Partial<Refused> = {}) =>
  refuse(403, 'SignatureDoesNotMatch', `The request signature we calculated does not match the signature you provided: ${reason}`, extra);
const sha256Hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function header(req: SignedRequest, name: string): string | undefined {
  return req.headers[name]?.join(',');
}

/** The query as smithy wants it: decoded names to decoded value(s). Throws on bad percent-encoding. */
function parseQuery(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  if (raw === '') return query;
  for (const part of raw.split('&')) {
    const eq = part.indexOf('=');
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    const had = query[name];
    query[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return query;
}

/** 20261123T191300Z -> Date, or undefined if it is not that shape. */
function parseAmzDate(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? '');
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(text: string): Scope | undefined {
  const parts = text.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') return undefined;
  const [accessKeyId = '', date = '', region = '', service = ''] = parts;
  return { accessKeyId, date, region, service };
}

/** Verifies one request; the body must be complete. Never throws for a bad request. */
export async function verifySigV4(req: SignedRequest, options: VerifyOptions): Promise<Verified | Refused> {
  const now = options.now?.() ?? Date.now();
  const qAt = req.url.indexOf('?');
  const path = qAt < 0 ? req.url : req.url.slice(0, qAt);
  let query: Record<string, string | string[]>;
  try {
    query = parseQuery(qAt < 0 ? '' : req.url.slice(qAt + 1));
  } catch {
    return refuse(400, 'InvalidArgument', 'the query string is not valid percent-encoding');
  }
  const authorization = header(req, 'authorization');
  const presigned = typeof query['X-Amz-Signature'] === 'string' || typeof query['X-Amz-Algorithm'] === 'string';
  if (authorization !== undefined && presigned)
    return refuse(400, 'InvalidArgument', 'only one auth mechanism allowed: the Authorization header or X-Amz-Signature in the query');
  if (authorization === undefined && !presigned) return refuse(403, 'AccessDenied', 'the request is not signed (no Authorization header, no X-Amz-Signature)');

  // What the client claims: scope, signed headers, signature, date.
  let scopeText: string;
  let signedList: string;
  let signature: string;
  let dateText: string | undefined;
  let expires: number | undefined;
  if (authorization !== undefined) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization);
    if (!m) return refuse(400, 'AuthorizationHeaderMalformed', 'the Authorization header is not AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    [, scopeText = '', signedList = '', signature = ''] = m;
    dateText = header(req, 'x-amz-date');
  } else {
    const q = (name: string) => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
    if (q('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    scopeText = q('X-Amz-Credential') ?? '';
    signedList = q('X-Amz-SignedHeaders') ?? '';
    signature = q('X-Amz-Signature') ?? '';
    dateText = q('X-Amz-Date');
    const expiresText = q('X-Amz-Expires') ?? '';
    if (!/^\d{1,6}$/.test(expiresText) || +expiresText > 604800)
      return refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be a number of seconds up to 604800');
    expires = +expiresText;
    if (!/^[0-9a-f]{64}$/.test(signature)) return refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Signature must be 64 hex digits');
  }
  const scope = parseCredential(scopeText);
  if (!scope) return refuse(400, 'AuthorizationHeaderMalformed', 'the credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request');
  const signedHeaders = signedList.split(';');
  const facts = { accessKeyId: scope.accessKeyId, signedHeaders };
  const keys = typeof options.keys === 'function' ? options.keys() : options.keys;
  const key = keys.find((k) => k.accessKeyId === scope.accessKeyId);
  if (!key) return refuse(403, 'InvalidAccessKeyId', 'the AWS access key id you provided does not exist in our records', facts);
  if (options.region !== undefined && scope.region !== options.region)
    return refuse(400, 'AuthorizationHeaderMalformed', `the credential scope names region '${scope.region}'; expecting '${options.region}'`, facts);
  if (options.service !== undefined && scope.service !== options.service)
    return refuse(400, 'AuthorizationHeaderMalformed', `the credential scope names service '${scope.service}'; expecting '${options.service}'`, facts);

  const signingDate = parseAmzDate(dateText);
  if (!signingDate) return refuse(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date (YYYYMMDDTHHMMSSZ)', facts);
  if (dateText!.slice(0, 8) !== scope.date) return mismatch(`the credential scope date ${scope.date} is not the day of x-amz-date ${dateText}`, facts);
  if (expires === undefined && Math.abs(now - signingDate.getTime()) > FIFTEEN_MINUTES)
    return refuse(403, 'RequestTimeTooSkewed', `x-amz-date ${dateText} is more than 15 minutes from the server's time`, facts);
  if (expires !== undefined) {
    if (signingDate.getTime() - now > FIFTEEN_MINUTES) return refuse(403, 'RequestTimeTooSkewed', `X-Amz-Date ${dateText} is in the future`, facts);
    if (signingDate.getTime() + expires * 1000 < now)
      return refuse(403, 'AccessDenied', `Request has expired (X-Amz-Date ${dateText}, X-Amz-Expires ${expires})`, facts);
  }

  // Headers: host must be signed, every x-amz-* header present must be signed, every signed one present.
  if (!signedHeaders.includes('host')) return mismatch('host is not among the signed headers', facts);
  const unsigned = Object.keys(req.headers).filter((h) => h.startsWith('x-amz-') && !signedHeaders.includes(h));
  if (unsigned.length > 0) return refuse(403, 'AccessDenied', `there were headers present in the request which were not signed: ${unsigned.join(', ')}`, facts);
  const toSign: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(req, name);
    if (value === undefined) return mismatch(`signed header '${name}' is not in the request`, facts);
    toSign[name] = value;
  }
  const token = header(req, 'x-amz-security-token') ?? (typeof query['X-Amz-Security-Token'] === 'string' ? query['X-Amz-Security-Token'] : undefined);
  if (key.sessionToken !== undefined && token !== key.sessionToken)
    return refuse(403, 'InvalidToken', 'the security token included in the request is missing or not the one issued with this access key', facts);

  const signer = new SignatureV4({
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    region: scope.region,
    service: scope.service,
    sha256: Hash.bind(null, 'sha256'),
    // S3 signs the path as sent; every other service signs it URI-encoded once more.
    uriEscapePath: scope.service !== 's3',
    applyChecksum: false,
  });
  const context = { signingDate, signingRegion: scope.region, signingService: scope.service };
  const payloadHeader = header(req, 'x-amz-content-sha256');
  const payloadMode = payloadHeader === undefined ? 'absent' : /^[0-9a-f]{64}$/.test(payloadHeader) ? 'sha256' : payloadHeader;
  const withMode = { ...facts, payloadMode };
  const base = { method: req.method, protocol: 'https:', hostname: 'signed.invalid', path };

  if (expires !== undefined) {
    const rest = Object.fromEntries(Object.entries(query).filter(([name]) => !AUTH_QUERY.includes(name)));
    const inQuery = rest['X-Amz-Content-Sha256'];
    const payloadHash = typeof inQuery === 'string' ? inQuery : scope.service === 's3' ? 'UNSIGNED-PAYLOAD' : sha256Hex(req.body);
    const hashOnly = signedHeaders.includes('x-amz-content-sha256') ? new Set<string>() : new Set(['x-amz-content-sha256']);
    const signed = await signer.presign(
      { ...base, query: rest, headers: { ...toSign, 'x-amz-content-sha256': toSign['x-amz-content-sha256'] ?? payloadHash } },
      {
        ...context,
        expiresIn: expires,
        signableHeaders: new Set(signedHeaders),
        unhoistableHeaders: new Set([...signedHeaders, 'x-amz-content-sha256']),
        unsignableHeaders: hashOnly,
      },
    );
    const answer = signed.query ?? {};
    if (answer['X-Amz-SignedHeaders'] !== signedList) return mismatch(`signed headers '${signedList}' are not in canonical order`, withMode);
    if (!sameHex(String(answer['X-Amz-Signature']), signature)) return mismatch('check your key and signing method', withMode);
    return { ok: true, auth: 'query', ...scope, signedHeaders, payloadMode: payloadHash, securityToken: token !== undefined, payload: req.body };
  }

  if (scope.service === 's3' && payloadHeader === undefined)
    return refuse(400, 'InvalidRequest', 'missing required header for this request: x-amz-content-sha256', withMode);
  const signed = await signer.sign({ ...base, query, headers: toSign, body: req.body }, { ...context, signableHeaders: new Set(signedHeaders) });
  const computed = /SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(String(signed.headers['authorization']));
  if (computed?.[1] !== signedList) return mismatch(`signed headers '${signedList}' are not lower-case, sorted and unique`, withMode);
  if (!sameHex(computed[2]!, signature)) return mismatch('check your key and signing method', withMode);
  const verified: Verified = { ok: true, auth: 'header', ...scope, signedHeaders, payloadMode, securityToken: token !== undefined, payload: req.body };
  return verifyPayload(req, verified, signer, context, signature, dateText!);
}

async function verifyPayload(
  req: SignedRequest,
  verified: Verified,
  signer: SignatureV4,
  context: { signingDate: Date; signingRegion: string; signingService: string },
  seedSignature: string,
  longDate: string,
): Promise<Verified | Refused> {
  const mode = verified.payloadMode;
  const facts = { accessKeyId: verified.accessKeyId, signedHeaders: verified.signedHeaders, payloadMode: mode };
  if (mode === 'sha256') {
    const got = sha256Hex(req.body);
    if (got !== header(req, 'x-amz-content-sha256'))
      return refuse(
        400,
        'XAmzContentSHA256Mismatch',
        `the provided x-amz-content-sha256 does not match the SHA-256 of the ${req.body.length} bytes received`,
        facts,
      );
    return checkHeaderChecksums(req, verified);
  }
  if (mode === 'absent' || mode === 'UNSIGNED-PAYLOAD') return checkHeaderChecksums(req, verified);
  const chunkedModes = [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER];
  if (!chunkedModes.includes(mode)) return refuse(400, 'InvalidArgument', `x-amz-content-sha256 '${mode.slice(0, 64)}' is not a payload mode S3 knows`, facts);
  const encodings = (header(req, 'content-encoding') ?? '').split(',').map((e) => e.trim());
  if (!encodings.includes('aws-chunked')) return refuse(400, 'InvalidArgument', `${mode} requires Content-Encoding: aws-chunked`, facts);
  let body: ReturnType<typeof parseAwsChunked>;
  try {
    body = parseAwsChunked(req.body);
  } catch (error) {
    return refuse(400, 'IncompleteBody', (error as Error).message, facts);
  }
  const declared = header(req, 'x-amz-decoded-content-length');
  if (declared !== String(body.decoded.length))
    return refuse(400, 'IncompleteBody', `x-amz-decoded-content-length is ${declared ?? 'missing'}, the chunks hold ${body.decoded.length} bytes`, facts);
  const signedChunks = mode !== STREAMING_UNSIGNED_TRAILER;
  if (signedChunks) {
    const scope = `${longDate.slice(0, 8)}/${context.signingRegion}/${context.signingService}/aws4_request`;
    let prior = seedSignature;
    for (const [index, chunk] of body.chunks.entries()) {
      if (chunk.signature === undefined) return mismatch(`chunk ${index} has no chunk-signature`, facts);
      const expected = await signer.sign({ headers: new Uint8Array(0), payload: chunk.data }, { ...context, priorSignature: prior });
      if (!sameHex(expected, chunk.signature)) return mismatch(`chunk ${index} (${chunk.data.length} bytes) has a wrong chunk-signature`, facts);
      prior = chunk.signature;
    }
    if (mode === STREAMING_SIGNED_TRAILER) {
      if (body.trailerSignature === undefined) return mismatch('the trailer has no x-amz-trailer-signature', facts);
      const trailerText = body.trailers.map(([name, value]) => `${name}:${value}\n`).join('');
      const toSign = ['AWS4-HMAC-SHA256-TRAILER', longDate, scope, prior, sha256Hex(trailerText)].join('\n');
      const expected = await signer.sign(toSign, context);
      if (!sameHex(expected, body.trailerSignature)) return mismatch('x-amz-trailer-signature is wrong', facts);
    }
  } else if (body.chunks.some((c) => c.signature !== undefined)) {
    return refuse(400, 'InvalidArgument', `${mode} chunks must not carry chunk-signature`, facts);
  }
  const declaredTrailers = (header(req, 'x-amz-trailer') ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const sentTrailers = body.trailers.map(([name]) => name);
  if (declaredTrailers.join(',') !== sentTrailers.join(','))
    return refuse(
      400,
      'MalformedTrailerError',
      `x-amz-trailer names '${declaredTrailers.join(',')}', the body's trailer has '${sentTrailers.join(',')}'`,
      facts,
    );
  const out: Verified = { ...verified, payload: body.decoded, chunkSizes: body.chunks.map((c) => c.data.length).slice(0, -1), trailers: sentTrailers };
  for (const [name, value] of body.trailers) {
    if (!name.startsWith('x-amz-checksum-')) continue;
    const expected = checksumOf(name, body.decoded);
    if (expected !== undefined && expected !== value) return refuse(400, 'BadDigest', `the ${name} trailer does not match the data received`, facts);
    out.checksum = { name, verified: expected !== undefined };
  }
  return checkHeaderChecksums(req, out);
}

/** Content-MD5 and x-amz-checksum-* headers, which S3 checks against the payload too. */
function checkHeaderChecksums(req: SignedRequest, verified: Verified): Verified | Refused {
  const facts = { accessKeyId: verified.accessKeyId, signedHeaders: verified.signedHeaders, payloadMode: verified.payloadMode };
  const md5 = header(req, 'content-md5');
  if (md5 !== undefined && createHash('md5').update(verified.payload).digest('base64') !== md5)
    return refuse(400, 'BadDigest', 'the Content-MD5 you specified did not match what was received', facts);
  for (const name of Object.keys(req.headers)) {
    if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-algorithm' || name === 'x-amz-checksum-type' || name === 'x-amz-checksum-mode')
      continue;
    if (req.method !== 'PUT') continue; // CompleteMultipartUpload's header is the whole object's, not its body's
    const expected = checksumOf(name, verified.payload);
    if (expected !== undefined && expected !== header(req, name)) return refuse(400, 'BadDigest', `the ${name} header does not match the data received`, facts);
    verified.checksum = { name, verified: expected !== undefined };
  }
  return verified;
}
