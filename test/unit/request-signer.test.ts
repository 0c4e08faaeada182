// The proxy signs through one interface (src/credentials/signing/signer.ts): a grant's kind compiles
// its signer, the head stage signing-plan asks it to plan, the body stage sign asks it to sign. These
// check the seam itself, with a context standing in for the proxy's request.
import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type KindFields, kindOf } from '../../src/credentials/types/index.ts';
import type { Credential } from '../../src/credentials/material.ts';
import { hmacSignSchema } from '../../src/credentials/types/hmac/signing/index.ts';
import type { RequestSigner, SignedBodyRefusal, SigningAudit, SigningBody, SigningContext } from '../../src/credentials/signing/signer.ts';

const KRAKEN = hmacSignSchema.parse({ preset: 'kraken' });
const AWS_KEY: Credential = { kind: 'aws', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: undefined };
const HMAC_KEY: Credential = { kind: 'hmac', key: Buffer.from('a kraken secret of some length').toString('base64'), keyId: 'kid', passphrase: undefined };

function context(over: Partial<SigningContext> & { targetHost: string }): SigningContext & { audit: SigningAudit; kept: string[] } {
  const kept: string[] = [];
  return {
    grantId: 'g',
    headers: {},
    query: '',
    audit: {},
    method: 'POST',
    outgoing: { headers: {}, path: '/' },
    upstreamHost: over.targetHost,
    now: () => new Date('2026-11-25T03:00:00Z'),
    whole: async (body) => (body.kind === 'kept' ? body.body : Buffer.concat(await body.stream.toArray())),
    reserve: undefined,
    keepSignature: (s) => void kept.push(s),
    kept,
    ...over,
  } as SigningContext & { audit: SigningAudit; kept: string[] };
}

/** The signer a kind compiles from a grant's fields: a signing kind's wire has one. */
function signerOf(type: 'aws_sigv4' | 'hmac' | 'bearer', fields: KindFields): RequestSigner | undefined {
  const wire = kindOf(type).wire;
  return wire.by === 'sign' ? wire.signer(fields) : undefined;
}

describe('a grant’s signer', () => {
  it('is compiled by the kinds that sign, and by no other', () => {
    expect(signerOf('aws_sigv4', {})).toBeDefined();
    expect(signerOf('hmac', { sign: KRAKEN })).toBeDefined();
    expect(signerOf('hmac', {})).toBeUndefined();
    expect(signerOf('bearer', {})).toBeUndefined();
  });

  it('aws_sigv4: plans from the head (scope, audit fields), then signs the body it hashes', async () => {
    const signer = signerOf('aws_sigv4', {}) as RequestSigner;
    const ctx = context({ targetHost: 's3.eu-west-1.amazonaws.com', outgoing: { headers: { 'content-type': 'text/plain' }, path: '/bucket/key' } });
    const plan = signer.plan(ctx);
    expect(ctx.audit).toEqual({ signed: 'sigv4', region: 'eu-west-1', service: 's3' });
    const body: SigningBody = { kind: 'kept', body: Buffer.from('hello') };
    expect(await signer.sign(ctx, body, plan, AWS_KEY)).toBe(body);
    expect(ctx.outgoing.headers['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261125\/eu-west-1\/s3\/aws4_request, /);
    expect(ctx.outgoing.headers['x-amz-content-sha256']).toBe(hash('sha256', 'hello', 'hex'));
    expect(ctx.outgoing.headers['host']).toBe('s3.eu-west-1.amazonaws.com');
  });

  it('aws_sigv4: a shape it cannot re-sign is refused at the plan, before the body or the credential', () => {
    const signer = signerOf('aws_sigv4', {}) as RequestSigner;
    const ctx = context({ targetHost: 's3.eu-west-1.amazonaws.com', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(() => signer.plan(ctx)).toThrow(expect.objectContaining({ code: 'signature_unsupported' }));
    expect(ctx.audit).toEqual({});
  });

  it('hmac: nothing planned; the body held whole through the proxy, signed, rewritten (a nonce), and said on the line', async () => {
    const signer = signerOf('hmac', { sign: KRAKEN }) as RequestSigner;
    const ctx = context({ targetHost: 'api.kraken.com', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    ctx.outgoing.headers['content-type'] = 'application/x-www-form-urlencoded';
    ctx.outgoing.path = '/0/private/Balance';
    const plan = signer.plan(ctx);
    expect(ctx.audit).toEqual({});
    const body = await signer.sign(ctx, { kind: 'streamed', stream: Readable.from([Buffer.from('nonce=1')]), why: 'size' }, plan, HMAC_KEY);
    expect(body.kind).toBe('kept');
    expect(body.kind === 'kept' && body.body.toString()).toMatch(/^nonce=\d+$/);
    expect(ctx.outgoing.headers['api-sign']).toBeTypeOf('string');
    expect(ctx.outgoing.headers['api-key']).toBe('kid');
    expect(ctx.audit).toEqual({ signed: 'hmac' });
  });

  it('a body over max_signed_body is refused with 413 in the signing words, whichever kind', async () => {
    const refused = (refusal: SignedBodyRefusal) => Promise.reject(refusal.over(99));
    for (const signer of [signerOf('aws_sigv4', { max_signed_body: '8B' }), signerOf('hmac', { sign: KRAKEN, max_signed_body: '8B' })]) {
      const ctx = context({ targetHost: 's3.eu-west-1.amazonaws.com', whole: (_body, _cap, refusal) => refused(refusal) });
      const plan = signer!.plan(ctx);
      const body: SigningBody = { kind: 'streamed', stream: Readable.from([Buffer.from('0123456789')]), why: 'size' };
      const key = ctx.audit.signed === 'sigv4' ? AWS_KEY : HMAC_KEY;
      await expect(signer!.sign(ctx, body, plan, key)).rejects.toMatchObject({
        code: 'body_too_large',
        message: 'grant "g" must hold a body to sign it, and this one is over max_signed_body (8 bytes)',
      });
    }
  });
});
