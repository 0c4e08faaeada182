import { createPrivateKey } from 'node:crypto';
import { KeywayError } from '../../../errors/index.ts';
import { bearerInjector, configuredInjector } from '../../injectors/index.ts';
import type { GoogleServiceAccountMaterial } from './material.ts';
import { googleMinter } from './minter.ts';
import { blank, type GrantKind, type ObjectInput, objectUsable } from '../kind.ts';

// google_service_account: the JSON key file Google gives; keyway signs assertions with its key and
// mints access tokens (minter.ts), never sending the key.

/**
 * The key file, checked: its private key is an RSA private key in PEM, and its token_uri an
 * https:// URL (Google's own when the file has none). Messages never quote the key.
 */
function keyFile({ str }: ObjectInput): GoogleServiceAccountMaterial {
  const privateKey = str('privateKey', true)!;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    throw new KeywayError('usage', 'google_service_account secret: "private_key" is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa')
    throw new KeywayError('usage', 'google_service_account secret: "private_key" is not an RSA key (Google signs with RS256)');
  const tokenUri = str('tokenUri', false) ?? 'https://oauth2.googleapis.com/token';
  let url: URL | undefined;
  try {
    url = new URL(tokenUri);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || url.username !== '' || url.password !== '') {
    throw new KeywayError('usage', 'google_service_account secret: "token_uri" must be an https:// URL');
  }
  return { clientEmail: str('clientEmail', true)!, privateKey, privateKeyId: str('privateKeyId', false), tokenUri };
}

/** The scopes its tokens are minted for, and the user it acts as (domain-wide delegation). */
interface GoogleSettings {
  scopes: readonly string[];
  subject: string | undefined;
}

export const googleServiceAccount: GrantKind<'google_service_account'> = {
  type: 'google_service_account',
  shape: 'a google_service_account secret is the JSON key file Google gives ({"client_email","private_key",…})',
  object: keyFile,
  usable: objectUsable<GoogleServiceAccountMaterial>(
    (m) => typeof m.clientEmail === 'string' && typeof m.privateKey === 'string' && typeof m.tokenUri === 'string' && !blank(m.privateKey),
  ),
  issuer: {
    by: 'minted',
    token: (grant, material, mint) =>
      typeof material === 'object' && 'clientEmail' in material ? mint(googleMinter, { key: material, ...(grant.settings as GoogleSettings) }) : undefined,
    credential: (_grant, token) => ({ kind: 'token', value: token }),
  },
  wire: { by: 'inject', injector: (inject) => configuredInjector(inject) ?? bearerInjector() },
  compile: (g) => ({ settings: { scopes: g.scopes ?? [], subject: g.subject } satisfies GoogleSettings }),
  parsesConfigSecret: true,
};
