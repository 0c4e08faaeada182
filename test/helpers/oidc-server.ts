import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';

// A bare oidc-provider on 127.0.0.1:0, configured by the test (a DPoP-enforcing server, a
// token-exchange grant): for tests of one protocol that need none of auth-server.ts's helpers.

export interface OidcServer {
  issuer: string;
  provider: Provider;
  close(): Promise<void>;
}

/** Starts it; `setUp` may register grant types on the provider before it serves. */
export async function startOidcServer(configuration: Configuration, setUp?: (provider: Provider) => void): Promise<OidcServer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, { ...configuration, features: { devInteractions: { enabled: false }, ...configuration.features } });
  setUp?.(provider);
  server.on('request', provider.callback());
  return {
    issuer,
    provider,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * An authorization server that enforces DPoP: one confidential client whose tokens must be bound
 * (client credentials, scope api), a nonce required on every token request, introspection open.
 */
export function startDpopServer(client: { id: string; secret: string }): Promise<OidcServer> {
  return startOidcServer({
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        dpop_bound_access_tokens: true,
      },
    ],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    },
    scopes: ['api'],
  });
}
