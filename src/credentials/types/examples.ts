import type { GrantType } from '../../config/index.ts';
import { apiKeyExample } from './api_key/example.ts';
import { awsSigV4Example } from './aws_sigv4/example.ts';
import { basicExample } from './basic/example.ts';
import { bearerExample } from './bearer/example.ts';
import { clientCredentialsExample } from './client_credentials/example.ts';
import { dpopExample } from './dpop/example.ts';
import type { KindExample } from './example.ts';
import { githubAppExample } from './github_app/example.ts';
import { googleServiceAccountExample } from './google_service_account/example.ts';
import { hmacExample } from './hmac/example.ts';
import { httpSignatureExample } from './http_signature/example.ts';
import { jwtExample } from './jwt/example.ts';
import { loginCaptureExample } from './login_capture/example.ts';
import { mtlsExample } from './mtls/example.ts';
import { oauth2Example } from './oauth2/example.ts';
import { privateKeyJwtExample } from './private_key_jwt/example.ts';
import { tokenExchangeExample } from './token_exchange/example.ts';

// Every type's example, registered once beside KINDS: a type added to GRANT_TYPES and not here
// does not compile, and contract.test.ts walks each one. Only tests read these.

export const EXAMPLES: { readonly [T in GrantType]: KindExample<T> } = {
  bearer: bearerExample,
  api_key: apiKeyExample,
  basic: basicExample,
  jwt: jwtExample,
  oauth2: oauth2Example,
  client_credentials: clientCredentialsExample,
  mtls: mtlsExample,
  aws_sigv4: awsSigV4Example,
  hmac: hmacExample,
  google_service_account: googleServiceAccountExample,
  github_app: githubAppExample,
  login_capture: loginCaptureExample,
  http_signature: httpSignatureExample,
  token_exchange: tokenExchangeExample,
  dpop: dpopExample,
  private_key_jwt: privateKeyJwtExample,
};
