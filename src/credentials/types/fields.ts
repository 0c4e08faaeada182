import type { GrantType } from '../../config/ids.ts';
import { apiKey } from './api_key/fields.ts';
import { awsSigV4 } from './aws_sigv4/fields.ts';
import { basic } from './basic/fields.ts';
import { bearer } from './bearer/fields.ts';
import { clientCredentials } from './client_credentials/fields.ts';
import { githubApp } from './github_app/fields.ts';
import { googleServiceAccount } from './google_service_account/fields.ts';
import { hmac } from './hmac/fields.ts';
import { httpSignature } from './http_signature/fields.ts';
import { tokenExchange } from './token_exchange/fields.ts';
import { dpop } from './dpop/fields.ts';
import { privateKeyJwt } from './private_key_jwt/fields.ts';
import { jwt } from './jwt/fields.ts';
import { loginCapture } from './login_capture/fields.ts';
import { mtls } from './mtls/fields.ts';
import { oauth2 } from './oauth2/fields.ts';

export type { Fail, GrantTypeFields, GrantView } from './type-fields.ts';
export { TOKEN_FIELDS } from './login_capture/fields.ts';

// Every credential type's keys, registered once, keyed by every type: a type added to GRANT_TYPES
// and not here does not compile. grant-fields.ts makes the grant schemas of these.

export const GRANT_TYPE_FIELDS = {
  oauth2,
  client_credentials: clientCredentials,
  api_key: apiKey,
  bearer,
  basic,
  aws_sigv4: awsSigV4,
  hmac,
  mtls,
  jwt,
  google_service_account: googleServiceAccount,
  github_app: githubApp,
  login_capture: loginCapture,
  http_signature: httpSignature,
  token_exchange: tokenExchange,
  dpop,
  private_key_jwt: privateKeyJwt,
} as const satisfies { readonly [T in GrantType]: { readonly type: T } };

/** The keys of one type, as the registry holds them. */
export type TypeShape<T extends GrantType> = (typeof GRANT_TYPE_FIELDS)[T]['shape'];
