import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ProxyError } from '../../../../errors/index.ts';
import type { Credential } from '../../../material.ts';
import { type RequestSigner, type SigningBody, type SigningContext, signedBodyRefusal } from '../../../signing/signer.ts';
import { type ChunkChain, resignChunkedBody } from './chunked.ts';
import type { AwsSigning } from './config.ts';
import { type AwsPlan, planAws } from './plan.ts';
import { presignAwsRequest, signAwsRequest, stringSigner } from './sign.ts';

type AwsCredential = Extract<Credential, { kind: 'aws' }>;

/** SHA-256 of no bytes: the payload hash of every request without a body. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * An aws_sigv4 grant's signer: planned from the head (plan.ts), signed once the body is known. A body
 * whose hash the signature covers is held whole, up to the grant's max_signed_body, hashed, and sent
 * as it was read; an unsigned payload streams as sent; an aws-chunked stream signed chunk by chunk
 * streams with each chunk signed again (chunked.ts). Over the bound: 413 body_too_large, never a
 * signature over a body keyway did not hash.
 */
export function awsSigner(signing: AwsSigning): RequestSigner<AwsPlan> {
  return {
    plan: (head) => planAws(signing, head),
    sign: (ctx, body, plan, credential) => signAws(signing, ctx, body, plan, credential),
  };
}

/**
 * Synchronous unless it must wait: for a body it hashes whole, a presigned URL (smithy's signer),
 * or an aws-chunked stream's first chunk. Most requests (no body, or a payload hash the client
 * named) are signed in place, with no promise.
 */
function signAws(signing: AwsSigning, ctx: SigningContext, body: SigningBody, plan: AwsPlan, credential: Credential): SigningBody | Promise<SigningBody> {
  if (credential.kind !== 'aws') throw new ProxyError('internal_error', `grant "${ctx.grantId}" has no AWS key to sign with`);
  if (plan.payload.kind === 'keep' || plan.payload.kind === 'chunked') return signHead(signing, ctx, body, plan, credential, plan.payload.value);
  if (body.kind === 'none') return signHead(signing, ctx, body, plan, credential, EMPTY_SHA256);
  return ctx
    .whole(body, signing.maxSignedBody, signedBodyRefusal(ctx.grantId, signing.maxSignedBody))
    .then((bytes) => signHead(signing, ctx, body.kind === 'kept' ? body : { kind: 'kept', body: bytes }, plan, credential, hash('sha256', bytes, 'hex')));
}

function signHead(
  signing: AwsSigning,
  ctx: SigningContext,
  body: SigningBody,
  plan: AwsPlan,
  credential: AwsCredential,
  payloadHash: string,
): SigningBody | Promise<SigningBody> {
  const { outgoing } = ctx;
  // The Host the upstream reads is the one signed: an HTTP/2 client sends none (it has :authority).
  const host = ctx.upstreamHost;
  outgoing.headers['host'] = host;
  const now = ctx.now();
  if (plan.presigned) {
    const request = { method: ctx.method, host, path: outgoing.path, headers: outgoing.headers };
    return presignAwsRequest(request, credential, plan.scope, now, signing.maxPresignSeconds).then((path) => {
      outgoing.path = path;
      // A presigned URL is a credential for its lifetime: an upstream that echoes it must not hand it over.
      const signature = new URLSearchParams(path.slice(path.indexOf('?') + 1)).get('X-Amz-Signature');
      if (signature) ctx.keepSignature(signature);
      return body;
    });
  }
  const signed = signAwsRequest(
    { method: ctx.method, host, path: outgoing.path, headers: outgoing.headers, signedHeaders: plan.signedHeaders, payloadHash },
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
    return resignChunks(signing, ctx, body, plan.payload.trailer, { ...chain, sign: stringSigner(credential, plan.scope, now) });
  }
  return body;
}

/**
 * The aws-chunked body with keyway's chunk signatures, streamed. Its length is the client's (each
 * signature is replaced by one of the same 64 digits), so the Content-Length the client sent, and
 * signed, goes on as it is. The first chunk is read and signed before the body is handed on: a body
 * that is refused from its first bytes (framing, a chunk too large) sends nothing upstream.
 */
async function resignChunks(signing: AwsSigning, ctx: SigningContext, body: SigningBody, trailer: boolean, chain: ChunkChain): Promise<SigningBody> {
  const declared = firstValue(ctx.headers['x-amz-decoded-content-length']);
  if (declared !== undefined && !/^\d{1,15}$/.test(declared)) {
    throw new ProxyError('bad_request', `x-amz-decoded-content-length is not a number of bytes: ${JSON.stringify(declared.slice(0, 20))}`, {
      grant: ctx.grantId,
    });
  }
  const source: AsyncIterator<Buffer> =
    body.kind === 'streamed' ? body.stream.iterator({ destroyOnReturn: false }) : bytesOf(body.kind === 'kept' ? body.body : Buffer.alloc(0));
  const chunks = resignChunkedBody(source, {
    chain,
    trailer,
    maxChunk: signing.maxSignedBody,
    reserve: ctx.reserve,
    decodedLength: declared === undefined ? undefined : Number(declared),
    grantId: ctx.grantId,
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

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
