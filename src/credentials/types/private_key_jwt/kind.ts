import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import { reflowPem } from '../../material-text.ts';
import { type GrantKind, textUsable } from '../kind.ts';
import { assertionKeyOf, heldKey, SHAPE } from './key.ts';
import { type PrivateKeyJwtMint, privateKeyJwtMinter } from './minter.ts';

// private_key_jwt: the grant's secret is the client's private key alone (a PEM, as http_signature's
// is): the client id and key id are public, registered with the public key, and stay in the
// grant's keys. keyway signs a client assertion with it and mints access tokens (minter.ts),
// which go on requests as Bearer; the key never leaves keyway.

/** What it mints for, but the key: compiled once per table build. */
type PrivateKeyJwtSettings = Omit<PrivateKeyJwtMint, 'key'>;

export const privateKeyJwt: GrantKind<'private_key_jwt'> = {
  type: 'private_key_jwt',
  shape: SHAPE,
  line: (text) => {
    const pem = reflowPem(text.trim());
    assertionKeyOf(pem);
    return pem;
  },
  usable: textUsable,
  issuer: {
    by: 'minted',
    token: (grant, material, mint) => {
      const key = heldKey(material);
      return key === undefined ? undefined : mint(privateKeyJwtMinter, { ...(grant.settings as PrivateKeyJwtSettings), key });
    },
    credential: (_grant, token) => ({ kind: 'token', value: token }),
  },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  describe: (g, injector) => `${injector.describe()} (tokens from ${g.token_endpoint ?? '?'} as ${g.client_id ?? '?'})`,
  compile: (g) => ({
    settings: {
      endpoint: g.token_endpoint ?? '',
      clientId: g.client_id ?? '',
      keyId: g.key_id,
      scopes: g.scopes ?? [],
    } satisfies PrivateKeyJwtSettings,
  }),
  parsesConfigSecret: true,
};
