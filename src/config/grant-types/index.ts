import type { GrantType } from '../ids.ts';
import { awsSigV4 } from './aws-sigv4.ts';
import { githubApp } from './github-app.ts';
import { googleServiceAccount } from './google-service-account.ts';
import { hmac } from './hmac.ts';
import { loginCapture } from './login-capture.ts';
import { mtls } from './mtls.ts';
import { clientCredentials, oauth2 } from './oauth.ts';
import { apiKey, basic, bearer, jwt } from './static.ts';

export type { Fail, GrantTypeFields, GrantView } from './type-fields.ts';
export { TOKEN_FIELDS } from './login-capture.ts';

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
} as const satisfies { readonly [T in GrantType]: { readonly type: T } };

/** The keys of one type, as the registry holds them. */
export type TypeShape<T extends GrantType> = (typeof GRANT_TYPE_FIELDS)[T]['shape'];
