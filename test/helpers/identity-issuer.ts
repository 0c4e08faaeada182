import { KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';

// Identity token issuers for the identities: tests.
// - startOidcIssuer: oidc-provider, a certified OpenID provider, on 127.0.0.1:0. It publishes its
//   discovery document and JWKS and mints JWT access tokens (client_credentials with a resource
//   indicator: the resource is the token's aud). Its signing key can be rotated (a new provider
//   with a new key takes over the same address), and its JWKS endpoint made slow or down.
// - fileIssuer: a key pair whose public half is written as a JWKS file, signing tokens shaped like
//   Kubernetes' projected service-account tokens or GitHub Actions' OIDC tokens (issuers the tests
//   cannot run: their claim shapes are what matters to the map rules).

export const ISSUER_CLIENT = 'workload-1';
const ISSUER_SECRET = 'workload-1-secret-4be1';

export type JwksMode = 'normal' | 'slow' | 'down' | 'garbage';

export interface OidcIssuer {
  issuer: string;
  /** A JWT access token for `audience`, with extra claims. */
  mint(audience: string, extra?: Record<string, unknown>): Promise<string>;
  /** A new signing key (new kid); the old one is no longer published. */
  rotate(): Promise<void>;
  jwksMode: JwksMode;
  /** GETs of the JWKS endpoint. */
  readonly jwksRequests: number;
  close(): Promise<void>;
}

async function signingJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `k-${Math.random().toString(36).slice(2, 10)}`, alg: 'ES256', use: 'sig' };
}

export async function startOidcIssuer(): Promise<OidcIssuer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let extra: Record<string, unknown> = {};
  let jwksRequests = 0;
  const state = { jwksMode: 'normal' as JwksMode };

  const make = async () => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: ISSUER_CLIENT,
          client_secret: ISSUER_SECRET,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: [await signingJwk()] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => undefined as unknown as string,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, resource: string) => ({
            scope: 'api',
            audience: resource,
            accessTokenFormat: 'jwt' as const,
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' as const } },
          }),
        },
      },
      scopes: ['api'],
      extraTokenClaims: async () => extra,
    });
    return provider.callback();
  };
  let callback = await make();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/jwks') {
      jwksRequests++;
      if (state.jwksMode === 'down') return void req.socket.destroy();
      if (state.jwksMode === 'slow') return; // never answers: keyway's timeout ends it
      if (state.jwksMode === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":');
    }
    callback(req, res);
  });

  return {
    issuer,
    async mint(audience, claims = {}) {
      extra = claims;
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${ISSUER_CLIENT}:${ISSUER_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: audience }).toString(),
      });
      const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`the issuer minted no token: ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    async rotate() {
      callback = await make();
    },
    get jwksMode() {
      return state.jwksMode;
    },
    set jwksMode(mode: JwksMode) {
      state.jwksMode = mode;
    },
    get jwksRequests() {
      return jwksRequests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface FileIssuer {
  issuer: string;
  jwksPath: string;
  /** A token signed with the issuer's key: `claims` over iss, iat and exp (now + 10 min) by default. */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** The public key as PEM text (for an algorithm-confusion attempt: HMAC keyed with it). */
  publicPem: string;
}

export async function fileIssuer(issuer: string, jwksPath: string): Promise<FileIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `file-${Math.random().toString(36).slice(2, 10)}`;
  writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] }));
  const publicPem = KeyObject.from(publicKey as Parameters<typeof KeyObject.from>[0]).export({ type: 'spki', format: 'pem' }) as string;
  return {
    issuer,
    jwksPath,
    publicPem,
    sign: (claims, header = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 600, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT', ...header })
        .sign(privateKey);
    },
  };
}
