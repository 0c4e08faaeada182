import type { KeyObject } from 'node:crypto';
import { ProxyError } from '../../../errors/index.ts';
import { DEFAULT_MAX_SIGNED_BODY, type RequestSigner, type SigningBody, signedBodyRefusal } from '../../signing/signer.ts';
import type { Component } from './components.ts';
import { jwkThumbprint, publicJwk } from './directory.ts';
import { contentDigest, type SignatureAlgorithm, signRequest } from './sign.ts';

// An http_signature grant's seat in the request path: the Content-Digest of the body where the
// signature covers it (the body held whole, up to 16 MiB), the Signature-Agent where one is set,
// then Signature-Input and Signature over the request as it goes upstream. A client's own
// signature fields are replaced: keyway's key is the one that signs.

export interface HttpSigning {
  readonly alg: SignatureAlgorithm;
  readonly components: readonly Component[];
  /** The keyid; undefined: the key's JWK thumbprint. */
  readonly keyid: string | undefined;
  readonly tag: string | undefined;
  /** The Signature-Agent header's value, as a structured string (`"https://…"`). */
  readonly signatureAgent: string | undefined;
  readonly expiresInSeconds: number;
  readonly nonce: boolean;
}

const thumbprints = new WeakMap<KeyObject, string>();

/** RFC 7638 thumbprint of a key's public half, once per key. */
export function thumbprintOf(key: KeyObject): string {
  let thumbprint = thumbprints.get(key);
  if (thumbprint === undefined) {
    thumbprint = jwkThumbprint(publicJwk(key));
    thumbprints.set(key, thumbprint);
  }
  return thumbprint;
}

export function httpSigner(signing: HttpSigning): RequestSigner<undefined> {
  const digests = signing.components.some((c) => c.name === 'content-digest');
  return {
    plan: () => undefined,
    async sign(ctx, body, _plan, credential) {
      if (credential.kind !== 'key') throw new ProxyError('internal_error', `grant "${ctx.grantId}" has no key to sign with`);
      const keyType = credential.key.asymmetricKeyType === 'ed25519' ? 'ed25519' : 'ecdsa-p256-sha256';
      if (keyType !== signing.alg) {
        throw new ProxyError(
          'grant_no_secret',
          `grant "${ctx.grantId}" signs with ${signing.alg}, and its key is ${keyType === 'ed25519' ? 'Ed25519' : 'P-256'}`,
          {
            grant: ctx.grantId,
            hint: `set sign.alg to ${keyType}, or set a ${signing.alg} key with keyway secrets set ${ctx.grantId}`,
          },
        );
      }
      let out: SigningBody = body;
      const { outgoing } = ctx;
      if (digests) {
        const bytes =
          body.kind === 'none' ? Buffer.alloc(0) : await ctx.whole(body, DEFAULT_MAX_SIGNED_BODY, signedBodyRefusal(ctx.grantId, DEFAULT_MAX_SIGNED_BODY));
        if (body.kind === 'streamed') out = { kind: 'kept', body: bytes };
        outgoing.headers['content-digest'] = contentDigest(bytes);
      }
      // Only keyway names where its key is published: an agent's own Signature-Agent never goes under keyway's signature.
      if (signing.signatureAgent !== undefined) outgoing.headers['signature-agent'] = signing.signatureAgent;
      else delete outgoing.headers['signature-agent'];
      delete outgoing.headers['signature'];
      delete outgoing.headers['signature-input'];
      let fields: ReturnType<typeof signRequest>;
      try {
        fields = signRequest(
          { method: ctx.method, scheme: ctx.scheme, authority: ctx.upstreamHost, target: outgoing.path, headers: outgoing.headers },
          { privateKey: credential.key, alg: signing.alg, keyid: signing.keyid ?? thumbprintOf(credential.key) },
          {
            components: signing.components,
            created: Math.floor(ctx.now().getTime() / 1000),
            expiresIn: signing.expiresInSeconds,
            nonce: signing.nonce,
            tag: signing.tag,
          },
        );
      } catch (err) {
        // A component the request lacks (a header the signature covers and the client did not send).
        throw new ProxyError('bad_request', `grant "${ctx.grantId}" cannot sign this request: ${(err as Error).message}`, { grant: ctx.grantId });
      }
      outgoing.headers['signature-input'] = fields['signature-input'];
      outgoing.headers['signature'] = fields.signature;
      ctx.audit.signed = 'http_signature';
      return out;
    },
  };
}
