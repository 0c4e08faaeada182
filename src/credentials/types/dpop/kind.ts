import { ProxyError } from '../../../errors/index.ts';
import { noInjector, refuseInjectSettings } from '../../injectors/index.ts';
import { clientOf, clientSecretOf } from '../client-material.ts';
import type { GrantKind } from '../kind.ts';
import { boundKeyOf } from './key.ts';
import { dpopMinter } from './minter.ts';
import { type DpopAlgorithm, dpopChallengeError, DpopNonces, nonceAsked } from './proof.ts';
import { dpopSigner } from './signer.ts';

// dpop: the grant's secret is the client keyway asks for tokens as ({"clientId","clientSecret"});
// each token is bound to a new key keyway makes for it (key.ts), minted and renewed by keyway
// (minter.ts), and every request carries a proof (signer.ts). How an API's 401 is met
// (Grant.retry): `use_dpop_nonce`, once more with its nonce and the same token; `invalid_token`,
// once more with a new token; any other (a proof it refused), passed on as it came.

// The nonces each server gave (a nonce is the server's, whichever grant heard it), shared by the
// signer (which sends them) and the retry (which learns them from every answer); for the process,
// not per table build, since a token saved to the store rebuilds the tables.
const nonces = new DpopNonces();

interface DpopSettings {
  readonly endpoint: string;
  readonly scopes: readonly string[];
  readonly alg: DpopAlgorithm;
}

export const dpop: GrantKind<'dpop'> = {
  type: 'dpop',
  shape: 'a dpop secret is a JSON object {"clientId","clientSecret"}: the client keyway asks for DPoP-bound tokens as',
  ...clientSecretOf('dpop'),
  issuer: {
    by: 'minted',
    token: (grant, material, mint) => {
      const client = clientOf(material);
      if (client === undefined) return undefined;
      const { endpoint, scopes, alg } = grant.settings as DpopSettings;
      return mint(dpopMinter, { endpoint, clientId: client.clientId, clientSecret: client.clientSecret, scopes, alg });
    },
    credential: (grant, token, _host, boundKey) => {
      if (boundKey === undefined)
        throw new ProxyError('token_refresh_failed', `grant "${grant.id}" holds a token with no key bound to it`, {
          grant: grant.id,
          hint: `keyway refresh ${grant.id}`,
        });
      return { kind: 'key', key: boundKeyOf(boundKey).privateKey, token };
    },
  },
  // Its token goes on with a proof signed by the key bound to it.
  wire: {
    by: 'sign',
    injector: (inject) => {
      refuseInjectSettings(inject, 'a dpop grant puts its token and proof on each request itself; it takes no --header, --format, --query or --body', true);
      return noInjector();
    },
    signer: () => dpopSigner(nonces),
  },
  describe: (g) => `header Authorization: DPoP {token}, DPoP: {proof} (${g.dpop.alg}; tokens from ${g.token_endpoint ?? '?'})`,
  compile: (g) => ({
    settings: { endpoint: g.token_endpoint ?? '', scopes: g.scopes ?? [], alg: g.dpop.alg } satisfies DpopSettings,
    retry: (status, headers, url) => {
      nonces.heard(url, headers);
      if (status !== 401) return undefined;
      const error = dpopChallengeError(headers['www-authenticate']);
      if (error === 'use_dpop_nonce') return nonceAsked(status, headers) === undefined ? 'relay' : 'same';
      return error === 'invalid_token' ? 'fresh' : 'relay';
    },
  }),
  parsesConfigSecret: true,
};
