import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { replaysAfter401 } from '../../credentials/credential-source.ts';
import { type ChunkChain, resignChunkedBody } from '../../credentials/signing/aws/chunked.ts';
import { presignAwsRequest, signAwsRequest, stringSigner } from '../../credentials/signing/aws/sign.ts';
import { HmacSignError, signHmacRequest, systemSources } from '../../credentials/signing/hmac/index.ts';
import type { Credential } from '../../credentials/material.ts';
import { ProxyError } from '../../errors/index.ts';
import { holdBody, readForReplay, type RequestBody } from '../replay-body.ts';
import { formatAuthority } from '../target.ts';
import type { AwsRequestSigning } from './aws-scope.ts';
import type { StagedRequest } from './request.ts';

/**
 * A stage on the request body: given the body as it stands (none, kept whole in memory, or a
 * stream), returns it as it goes on, or undefined to leave it. A stage that needs the whole body
 * (a replay copy, a hash for a signature) reads it into memory up to a bound and says what it did
 * past the bound; one that rewrites bytes as they pass returns a stream read from the one it got.
 */
export interface RequestBodyStage {
  readonly name: string;
  run(request: StagedRequest, body: RequestBody): RequestBody | Promise<RequestBody> | undefined;
}

/** A body the access stage held whole (a rule's max_body, size undeclared) is sent as it was read. */
export const heldBody: RequestBodyStage = {
  name: 'held-body',
  run(request) {
    return request.heldBody ? { kind: 'kept', body: request.heldBody } : undefined;
  },
};

/**
 * An OAuth grant's request may be sent twice (refresh and replay after a 401), and so may one whose
 * secret a command prints (the command runs again; replaysAfter401): its body is kept,
 * up to 1 MiB and within the agent's replay memory (replay-body.ts); past either it streams, once.
 */
export const keepForReplay: RequestBodyStage = {
  name: 'keep-for-replay',
  run(request, body) {
    if (body.kind !== 'streamed' || !request.grant || !request.issued || !replaysAfter401(request.grant) || !request.holder) return undefined;
    return readForReplay(request.req, request.holder, body.stream);
  },
};

/**
 * An aws_sigv4 grant's request is signed here, once its body is known (stage aws-scope planned
 * how): a body whose hash the signature covers is held whole, up to the grant's max_signed_body,
 * hashed, and sent as it was read; an unsigned payload streams as sent; an aws-chunked stream signed
 * chunk by chunk streams with each chunk signed again (chunked.ts). Over the bound: 413
 * body_too_large, never a signature over a body keyway did not hash.
 */
export const awsSign: RequestBodyStage = {
  name: 'aws-sign',
  run(request, body) {
    return request.aws === undefined ? undefined : signAws(request, body, request.aws);
  },
};

/**
 * Synchronous unless it must wait: for a body it hashes whole, a presigned URL (smithy's signer),
 * or an aws-chunked stream's first chunk. Most requests (no body, or a payload hash the client
 * named) are signed in place, with no promise.
 */
function signAws(request: StagedRequest, body: RequestBody, plan: AwsRequestSigning): RequestBody | Promise<RequestBody> {
  const grant = request.grant!;
  const credential = request.issued!.credential;
  if (credential.kind !== 'aws') throw new ProxyError('internal_error', `grant "${grant.id}" has no AWS key to sign with`);
  if (plan.payload.kind === 'keep' || plan.payload.kind === 'chunked') return signAwsHead(request, body, plan, credential, plan.payload.value);
  if (body.kind === 'none') return signAwsHead(request, body, plan, credential, EMPTY_SHA256);
  return wholeBody(request, body, grant.aws!.maxSignedBody).then((whole) =>
    signAwsHead(request, whole.body, plan, credential, hash('sha256', whole.bytes, 'hex')),
  );
}

function signAwsHead(
  request: StagedRequest,
  body: RequestBody,
  plan: AwsRequestSigning,
  credential: Extract<Credential, { kind: 'aws' }>,
  payloadHash: string,
): RequestBody | Promise<RequestBody> {
  const outgoing = request.outgoing!;
  // The Host the upstream reads is the one signed: an HTTP/2 client sends none (it has :authority).
  const host = upstreamHost(request);
  outgoing.headers['host'] = host;
  const now = request.conn.decisions.now();
  if (plan.presigned) {
    const request_ = { method: request.req.method ?? 'GET', host, path: outgoing.path, headers: outgoing.headers };
    return presignAwsRequest(request_, credential, plan.scope, now, request.grant!.aws!.maxPresignSeconds).then((path) => {
      outgoing.path = path;
      // A presigned URL is a credential for its lifetime: an upstream that echoes it must not hand it over.
      const signature = new URLSearchParams(path.slice(path.indexOf('?') + 1)).get('X-Amz-Signature');
      if (signature) request.signatures = [signature];
      return body;
    });
  }
  const signed = signAwsRequest(
    { method: request.req.method ?? 'GET', host, path: outgoing.path, headers: outgoing.headers, signedHeaders: plan.signedHeaders, payloadHash },
    credential,
    plan.scope,
    now,
  );
  outgoing.headers['authorization'] = signed.authorization;
  outgoing.headers['x-amz-date'] = signed['x-amz-date'];
  outgoing.headers['x-amz-content-sha256'] = signed['x-amz-content-sha256'];
  if (signed['x-amz-security-token'] !== undefined) outgoing.headers['x-amz-security-token'] = signed['x-amz-security-token'];
  else delete outgoing.headers['x-amz-security-token'];
  if (plan.payload.kind === 'chunked') {
    const chain = { seedSignature: signed.signature, amzDate: signed['x-amz-date'], credentialScope: signed.credentialScope };
    return resignChunks(request, body, plan.payload.trailer, { ...chain, sign: stringSigner(credential, plan.scope, now) });
  }
  return body;
}

/**
 * The aws-chunked body with keyway's chunk signatures, streamed. Its length is the client's (each
 * signature is replaced by one of the same 64 digits), so the Content-Length the client sent, and
 * signed, goes on as it is. The first chunk is read and signed before the body is handed on: a body
 * that is refused from its first bytes (framing, a chunk too large) sends nothing upstream.
 */
async function resignChunks(request: StagedRequest, body: RequestBody, trailer: boolean, chain: ChunkChain): Promise<RequestBody> {
  const grant = request.grant!;
  const declared = firstValue(request.req.headers['x-amz-decoded-content-length']);
  if (declared !== undefined && !/^\d{1,15}$/.test(declared)) {
    throw new ProxyError('bad_request', `x-amz-decoded-content-length is not a number of bytes: ${JSON.stringify(declared.slice(0, 20))}`, { grant: grant.id });
  }
  const source: AsyncIterator<Buffer> =
    body.kind === 'streamed' ? body.stream.iterator({ destroyOnReturn: false }) : bytesOf(body.kind === 'kept' ? body.body : Buffer.alloc(0));
  const chunks = resignChunkedBody(source, {
    chain,
    trailer,
    maxChunk: grant.aws!.maxSignedBody,
    reserve: request.holder === undefined ? undefined : (bytes) => request.holder!.hold(bytes),
    decodedLength: declared === undefined ? undefined : Number(declared),
    grantId: grant.id,
  });
  const first = await chunks.next();
  return { kind: 'streamed', stream: Readable.from(firstThenRest(first, chunks), { objectMode: false }), why: 'size' };
}

async function* bytesOf(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

async function* firstThenRest(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}

/** SHA-256 of no bytes: the payload hash of every request without a body. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * A body a signature covers, whole: as it was kept, or held now up to `max` bytes (the agent's
 * memory for held bodies counted); over either, 413 body_too_large. Returns the bytes and the
 * body to send on (held bodies go on as they were read).
 */
async function wholeBody(request: StagedRequest, body: Exclude<RequestBody, { kind: 'none' }>, max: number): Promise<{ bytes: Buffer; body: RequestBody }> {
  if (body.kind === 'kept') return { bytes: body.body, body };
  const grantId = request.grant!.id;
  if (Number(request.req.headers['content-length']) > max) throw tooLarge(grantId, max);
  const held = await holdBody(request.req, max, request.holder);
  if (held.kind !== 'held') throw tooLarge(grantId, max, held.kind === 'full');
  return { bytes: held.body, body: { kind: 'kept', body: held.body } };
}

/** The Host the upstream reads, which a signature covers: the client's, else the target's (an HTTP/2 client sends :authority). */
function upstreamHost(request: StagedRequest): string {
  const { target } = request.conn;
  return firstValue(request.outgoing!.headers['host']) ?? (target.port === 443 ? target.host : formatAuthority(target));
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function tooLarge(grantId: string, max: number, memory = false): ProxyError {
  return new ProxyError(
    'body_too_large',
    memory
      ? `grant "${grantId}" must hold this body to sign it, and the agent's memory for held bodies is spent`
      : `grant "${grantId}" must hold a body to sign it, and this one is over max_signed_body (${max} bytes)`,
    { grant: grantId, hint: 'send it in parts (a multipart upload), as UNSIGNED-PAYLOAD, or raise max_signed_body on the grant' },
  );
}

// One per process: its nonce counters only ever increase within it.
const HMAC_SOURCES = systemSources();

/**
 * An hmac grant's request is signed here by its scheme (credentials/signing/hmac): a scheme that
 * signs the body holds it whole, up to max_signed_body; the client's placeholder signature headers
 * and parameters are replaced; a scheme that rewrites the body (Kraken's nonce) sends the new one.
 */
export const hmacSign: RequestBodyStage = {
  name: 'hmac-sign',
  run(request, body) {
    return request.grant?.hmac === undefined || request.issued === undefined ? undefined : signHmac(request, body);
  },
};

async function signHmac(request: StagedRequest, body: RequestBody): Promise<RequestBody> {
  const grant = request.grant!;
  const { scheme, maxSignedBody } = grant.hmac!;
  const credential = request.issued!.credential;
  if (credential.kind !== 'hmac') throw new ProxyError('internal_error', `grant "${grant.id}" has no HMAC key to sign with`);
  let out = body;
  let bytes: Buffer | undefined;
  if (scheme.needsBody && body.kind !== 'none') {
    const whole = await wholeBody(request, body, maxSignedBody);
    bytes = whole.bytes;
    out = whole.body;
  }
  const outgoing = request.outgoing!;
  const q = outgoing.path.indexOf('?');
  const host = upstreamHost(request);
  let signed: ReturnType<typeof signHmacRequest>;
  try {
    signed = signHmacRequest(
      {
        method: request.req.method ?? 'GET',
        path: q === -1 ? outgoing.path : outgoing.path.slice(0, q),
        query: q === -1 ? '' : outgoing.path.slice(q + 1),
        headers: outgoing.headers,
        body: bytes,
        host,
      },
      { key: credential.key, keyId: credential.keyId, passphrase: credential.passphrase },
      scheme,
      HMAC_SOURCES,
    );
  } catch (err) {
    if (err instanceof HmacSignError) throw new ProxyError(err.code, err.message, { grant: grant.id });
    throw err;
  }
  for (const name of signed.removeHeaders) delete outgoing.headers[name];
  for (const [name, value] of Object.entries(signed.setHeaders)) outgoing.headers[name] = value;
  outgoing.path = signed.target;
  if (signed.body !== undefined) out = { kind: 'kept', body: signed.body };
  request.draft.event.signed = 'hmac';
  return out;
}

/**
 * A request under a bytes quota (stage limits set request.byteQuotas) counts its body as it goes
 * upstream: a kept body at once, a streamed one chunk by chunk. Last of the body stages, so it
 * counts what is sent (a signature's re-framing included); a replay sends the same body again and
 * is not counted twice. Other requests pass untouched, at no cost.
 */
export const countBody: RequestBodyStage = {
  name: 'count-body',
  run(request, body) {
    if (request.byteQuotas === undefined || body.kind === 'none') return undefined;
    if (body.kind === 'kept') {
      request.bytesSent += body.body.length;
      return undefined;
    }
    return { ...body, stream: Readable.from(counted(request, body.stream), { objectMode: false }) };
  },
};

async function* counted(request: StagedRequest, source: Extract<RequestBody, { kind: 'streamed' }>['stream']): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    request.bytesSent += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}
