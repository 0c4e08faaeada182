import type { KeyObject } from 'node:crypto';
import type { ClientCertificateMaterial } from './client-certificate.ts';
import type { AwsMaterial } from './types/aws_sigv4/material.ts';
import type { GitHubAppMaterial } from './types/github_app/material.ts';
import type { GoogleServiceAccountMaterial } from './types/google_service_account/material.ts';
import type { HmacKeyMaterial } from './types/hmac/material.ts';

export type { AwsMaterial, GitHubAppMaterial, GoogleServiceAccountMaterial, HmacKeyMaterial };

// Secret material, as `keyway secrets set` takes it and the store keeps it: the shapes several
// types share here (OAuth clients and tokens, a user and password), a type's own in its folder
// (types/<type>/material.ts), all of them in one union.

export interface OAuth2Material {
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  refreshToken?: string | undefined;
  accessToken?: string | undefined;
  /** Epoch milliseconds. */
  expiresAt?: number | undefined;
  scopes?: string[] | undefined;
  /**
   * For a client keyway registered itself at an authorization server it discovered (keyway connect
   * --mcp): where its tokens are refreshed and revoked, and the resource they are for (RFC 8707).
   * Other grants find their token endpoint through their provider.
   */
  server?: OAuthServer | undefined;
}

export interface OAuthServer {
  issuer: string;
  tokenUrl: string;
  revokeUrl?: string | undefined;
  resource?: string | undefined;
}
export interface ClientCredentialsMaterial {
  clientId: string;
  clientSecret: string;
  scopes?: string[] | undefined;
  accessToken?: string | undefined;
  expiresAt?: number | undefined;
}
export interface BasicMaterial {
  username: string;
  password: string;
}
export type SecretMaterial =
  | string
  | OAuth2Material
  | ClientCredentialsMaterial
  | BasicMaterial
  | AwsMaterial
  | HmacKeyMaterial
  | ClientCertificateMaterial
  | GoogleServiceAccountMaterial
  | GitHubAppMaterial;

/** What an OAuth grant's secret holds (oauth2's tokens or client, client_credentials' client). */
export type OAuthMaterial = OAuth2Material | ClientCredentialsMaterial;

/** What an injector puts on the wire (or, for `aws`, signs the request with). */
export type Credential =
  | { kind: 'token'; value: string }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'aws'; accessKeyId: string; secretAccessKey: string; sessionToken: string | undefined }
  | { kind: 'hmac'; key: string; keyId: string | undefined; passphrase: string | undefined }
  /**
   * A private key its type's signer signs with (an RFC 9421 signature, a DPoP proof), and the token
   * bound to it where there is one: only signatures and the token go upstream, never the key.
   */
  | { kind: 'key'; key: KeyObject; token: string | undefined }
  /** mtls: nothing goes on the request; the grant's client certificate goes on the connection. */
  | { kind: 'none' }
  /** login_capture: the real values of the placeholders this request carried, put in their place (capture/). */
  | { kind: 'captured'; values: readonly string[] };
