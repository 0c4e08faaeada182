import { ProxyError } from '../../../errors/index.ts';
import type { RequestSigner } from '../../signing/signer.ts';
import { keyOf } from './key.ts';
import { type DpopNonces, dpopProof } from './proof.ts';

// A dpop grant's seat in the request path: `Authorization: DPoP <token>` and a fresh proof for
// this request (its method, its URL without the query, the token's hash, the server's nonce), in
// place of whatever the client sent in either. The body is not read.

export function dpopSigner(nonces: DpopNonces): RequestSigner<undefined> {
  return {
    plan: () => undefined,
    async sign(ctx, body, _plan, credential) {
      if (credential.kind !== 'key' || credential.token === undefined) throw new ProxyError('internal_error', `grant "${ctx.grantId}" has no DPoP-bound token`);
      const url = `${ctx.scheme}://${ctx.upstreamHost}${ctx.outgoing.path}`;
      const { headers } = ctx.outgoing;
      headers['authorization'] = `DPoP ${credential.token}`;
      headers['dpop'] = await dpopProof(
        keyOf(credential.key),
        { method: ctx.method, url, accessToken: credential.token, nonce: nonces.get(url) },
        ctx.now().getTime(),
      );
      ctx.audit.signed = 'dpop';
      return body;
    },
  };
}
