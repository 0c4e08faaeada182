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
