import { KeywayError } from '../../../errors/index.ts';
import type { Grant } from '../../grants.ts';
import { noInjector, refuseInjectSettings } from '../../injectors/index.ts';
import type { ClientCredentialsMaterial, SecretMaterial } from '../../material.ts';
import { blank, type GrantKind, issued, objectUsable } from '../kind.ts';
import { derivedDpopKey } from './key.ts';
import { dpopMinter } from './minter.ts';
import { type DpopAlgorithm, type DpopKey, DpopNonces, nonceAsked } from './proof.ts';
import { dpopSigner } from './signer.ts';

// dpop: the grant's secret is the client keyway asks for tokens as ({"clientId","clientSecret"});
// its tokens are bound to a key derived from that secret (key.ts), minted and renewed by keyway
// (minter.ts), and every request carries a proof (signer.ts). An upstream that wants a nonce
// (401 use_dpop_nonce) gets the request once more, proved with it (Grant.retry).

// The nonces each server gave (a nonce is the server's, whichever grant heard it), shared by the
// signer (which sends them) and the retry (which learns them); for the process, not per table
// build, since a token saved to the store rebuilds the tables.
const nonces = new DpopNonces();

interface DpopSettings {
  readonly endpoint: string;
  readonly scopes: readonly string[];
  readonly alg: DpopAlgorithm;
}

const clientOf = (material: SecretMaterial | undefined): ClientCredentialsMaterial | undefined =>
  typeof material === 'object' && 'clientId' in material && 'clientSecret' in material && typeof material.clientSecret === 'string'
    ? (material as ClientCredentialsMaterial)
    : undefined;

function keyFor(grant: Grant, client: ClientCredentialsMaterial): DpopKey {
  return derivedDpopKey(client.clientSecret, grant.id, (grant.settings as DpopSettings).alg);
}

export const dpop: GrantKind<'dpop'> = {
  type: 'dpop',
  shape: 'a dpop secret is a JSON object {"clientId","clientSecret"}: the client keyway asks for DPoP-bound tokens as',
  object: ({ str }) => {
    const material: ClientCredentialsMaterial = { clientId: str('clientId', true)!, clientSecret: str('clientSecret', true)! };
    if (blank(material.clientSecret)) throw new KeywayError('usage', 'dpop secret: "clientSecret" must be a non-empty string');
    return material;
  },
  usable: objectUsable<ClientCredentialsMaterial>((m) => typeof m.clientId === 'string' && typeof m.clientSecret === 'string' && !blank(m.clientSecret)),
  credential: issued,
  injector: (inject) => {
    refuseInjectSettings(inject, 'a dpop grant puts its token and proof on each request itself; it takes no --header, --format, --query or --body', true);
    return noInjector();
  },
  describe: (g) => `header Authorization: DPoP {token}, DPoP: {proof} (${g.dpop.alg}; tokens from ${g.token_endpoint ?? '?'})`,
  compile: (g) => {
    return {
      settings: { endpoint: g.token_endpoint ?? '', scopes: g.scopes ?? [], alg: g.dpop.alg } satisfies DpopSettings,
      signer: dpopSigner(nonces),
      retry: (status, headers, url) => {
        nonces.heard(url, headers);
        return nonceAsked(status, headers) !== undefined;
      },
    };
  },
  mints: {
    token: (grant, material, mint) => {
      const client = clientOf(material);
      if (client === undefined) return undefined;
      const settings = grant.settings as DpopSettings;
      return mint(dpopMinter, {
        endpoint: settings.endpoint,
        clientId: client.clientId,
        clientSecret: client.clientSecret,
        scopes: settings.scopes,
        key: keyFor(grant, client),
      });
    },
    credential: (grant, token) => {
      const client = clientOf(grant.material);
      if (client === undefined) throw new KeywayError('usage', `grant "${grant.id}" has no client to bind its tokens to`);
      return { kind: 'key', key: keyFor(grant, client).privateKey, token };
    },
  },
  parsesConfigSecret: true,
};
