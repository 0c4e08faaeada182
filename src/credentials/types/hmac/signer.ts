import { ProxyError } from '../../../errors/index.ts';
// The signing files themselves, not signing/index.ts: that also exports the sign: schema (zod),
// which is the config loader's, not the proxy's start (docs/perf/startup.md).
import { HmacSignError } from './signing/errors.ts';
import type { HmacScheme } from './signing/scheme.ts';
import { signHmacRequest } from './signing/sign.ts';
import { systemSources } from './signing/sources.ts';
import { type RequestSigner, type SigningBody, signedBodyRefusal } from '../../signing/signer.ts';

// Beside hmac/, not in it: hmac/ is the pure signer (no I/O, no request but the one it is given);
// this is its seat in the request path, holding the body through the proxy when the scheme signs it.

// One per process: its nonce counters only ever increase within it.
const HMAC_SOURCES = systemSources();

/**
 * An hmac grant's signer, by its scheme: nothing to plan from the head (no audit field until the
 * request is signed); a scheme that signs the body holds it whole, up to max_signed_body; the
 * client's placeholder signature headers and parameters are replaced; a scheme that rewrites the
 * body (Kraken's nonce) sends the new one.
 */
export function hmacSigner(scheme: HmacScheme, maxSignedBody: number): RequestSigner<undefined> {
  return {
    plan: () => undefined,
    async sign(ctx, body, _plan, credential) {
      if (credential.kind !== 'hmac') throw new ProxyError('internal_error', `grant "${ctx.grantId}" has no HMAC key to sign with`);
      let out: SigningBody = body;
      let bytes: Buffer | undefined;
      if (scheme.needsBody && body.kind !== 'none') {
        bytes = await ctx.whole(body, maxSignedBody, signedBodyRefusal(ctx.grantId, maxSignedBody));
        if (body.kind !== 'kept') out = { kind: 'kept', body: bytes };
      }
      const { outgoing } = ctx;
      const q = outgoing.path.indexOf('?');
      const host = ctx.upstreamHost;
      let signed: ReturnType<typeof signHmacRequest>;
      try {
        signed = signHmacRequest(
          {
            method: ctx.method,
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
        if (err instanceof HmacSignError) throw new ProxyError(err.code, err.message, { grant: ctx.grantId });
        throw err;
      }
      for (const name of signed.removeHeaders) delete outgoing.headers[name];
      for (const [name, value] of Object.entries(signed.setHeaders)) outgoing.headers[name] = value;
      outgoing.path = signed.target;
      if (signed.body !== undefined) out = { kind: 'kept', body: signed.body };
      ctx.audit.signed = 'hmac';
      return out;
    },
  };
}
