import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import Provider from 'oidc-provider';
import { Agent, fetch as undiciFetch } from 'undici';
import { TLS_FIXTURES } from './fixtures.ts';

// A real, certified OAuth 2.0 / OpenID authorization server (oidc-provider) on 127.0.0.1:0, for the
// OAuth tests. Refresh tokens rotate; reusing a rotated one revokes the whole grant, exactly as at
// strict providers. A shim in front of it counts token calls and can play an endpoint that is
// down, slow, failing or talking nonsense.

export const CLIENT_ID = 'keyway-test';
export const CLIENT_SECRET = 'keyway-test-client-secret-0c5e';
export const ACCOUNT_ID = 'user-1';

export type EndpointMode = 'normal' | 'down' | 'slow' | 'error500' | 'garbage';

export interface AuthServer {
  issuer: string;
  /** The port it listens on, on 127.0.0.1. */
  port: number;
  tokenUrl: string;
  authUrl: string;
  deviceUrl: string;
  revokeUrl: string;
  introspectUrl: string;
  provider: Provider;
  /** Every token the token endpoint answered with (access, refresh and ID tokens), to look for where none may be. */
  issuedTokens: Set<string>;
  /** POSTs to /token that reached the provider, by grant_type. */
  tokenCalls: Record<string, number>;
  totalTokenCalls(): number;
  /** POSTs to /token that arrived at the shim, whatever the mode: unlike tokenCalls, counts the ones the shim answers itself (down, error500, garbage). */
  readonly tokenArrivals: number;
  /** How the token endpoint behaves from now on. */
  mode: EndpointMode;
  slowMs: number;
  /** Access token lifetime for tokens issued from now on, in seconds. */
  accessTokenTtl: number;
  /** Is this access token currently valid at the provider? */
  introspect(token: string): Promise<boolean>;
  /** The provider's whole introspection answer (active, client_id, scope, exp, aud…). */
  inspect(token: string): Promise<Record<string, unknown>>;
  /** Runs the authorization-code + PKCE flow headlessly and returns the token response. */
  obtainTokens(options?: { scope?: string; redirectUri?: string }): Promise<TokenResponse>;
  /** Follows an authorization URL through login and consent; returns the final redirect (the callback URL with code). */
  completeAuthorization(authorizationUrl: string): Promise<string>;
  /** Approves a device-flow user code as the test account. */
  approveDevice(userCode: string, scope?: string): Promise<void>;
  close(): Promise<void>;
}

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  scope?: string;
}

export interface AuthServerOptions {
  /**
   * Open dynamic client registration (RFC 7591) and resource indicators (RFC 8707): what an MCP
   * server's authorization server offers (keyway connect --mcp). Tokens are bound to the resource
   * asked for, with the scope `api`.
   */
  mcp?: boolean;
  /**
   * Take OAuth Client ID Metadata Documents (the MCP 2026-07-28 way to name a client): the
   * provider fetches a client_id that is an https URL with this fetch (the test's, which trusts the
   * test CA and maps test host names to loopback, where oidc-provider's own refuses loopback).
   */
  clientMetadataDocuments?: { fetch: typeof fetch };
  /**
   * Serve HTTPS as `https://HOSTNAME:PORT` (a name under *.example.test, which the committed test
   * leaf covers), as a real login server does: clients reach it through keyway, which maps the name
   * to 127.0.0.1 (proxy.hosts). The helper's own calls map it there themselves.
   */
  tls?: { hostname: string };
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const tls = options.tls;
  const server = tls ? createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }) : createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const issuer = tls ? `https://${tls.hostname}:${port}` : `http://127.0.0.1:${port}`;
  // The helper's own requests (a person's browser, the test's introspection): straight to the server.
  const fetch = tls ? loopbackFetch(tls.hostname) : globalThis.fetch;
  const state = { mode: 'normal' as EndpointMode, slowMs: 3_000, accessTokenTtl: 3600 };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        // Any port on loopback (RFC 8252 7.3): `keyway connect`'s own listener, and the admin listener's callback.
        redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/oauth/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: `${CLIENT_ID}-body`,
        client_secret: CLIENT_SECRET,
        application_type: 'native',
        grant_types: ['refresh_token', 'client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      // The test's own client may introspect and revoke any token it holds.
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      ...(options.mcp
        ? {
            registration: { enabled: true },
            resourceIndicators: {
              enabled: true,
              defaultResource: async () => undefined as unknown as string,
              useGrantedResource: async () => true,
              getResourceServerInfo: async (_ctx: unknown, resource: string) => ({ scope: 'api', audience: resource, accessTokenFormat: 'opaque' as const }),
            },
          }
        : {}),
      ...(options.clientMetadataDocuments ? { clientIdMetadataDocument: { enabled: true } } : {}),
    },
    ...(options.clientMetadataDocuments ? { fetch: options.clientMetadataDocuments.fetch } : {}),
    scopes: ['openid', 'offline_access', 'api'],
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: () => state.accessTokenTtl,
      ClientCredentials: () => state.accessTokenTtl,
      RefreshToken: 86_400,
      DeviceCode: 600,
      Grant: 86_400,
      Interaction: 600,
      Session: 86_400,
      AuthorizationCode: 60,
      IdToken: 3600,
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
  });
  const callback = provider.callback();
  const tokenCalls: Record<string, number> = {};
  let tokenArrivals = 0; // see AuthServer.tokenArrivals
  // Every token request the provider handled, successful or not, by grant_type.
  const count = (ctx: { oidc?: { params?: Record<string, unknown> } }) => {
    const grantType = String(ctx.oidc?.params?.['grant_type'] ?? 'unknown');
    tokenCalls[grantType] = (tokenCalls[grantType] ?? 0) + 1;
  };
  provider.on('grant.success', count);
  provider.on('grant.error', count);

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void route(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname.startsWith('/interaction/')) return interaction(req, res);
    if (url.pathname === '/token' && req.method === 'POST') {
      tokenArrivals++;
      if (state.mode === 'down') {
        req.socket.destroy();
        return;
      }
      if (state.mode === 'error500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream database unavailable');
        return;
      }
      if (state.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_tok');
        return;
      }
      if (state.mode === 'slow') await new Promise((r) => setTimeout(r, state.slowMs));
      recordIssued(res);
    }
    callback(req, res);
  }

  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: ACCOUNT_ID, clientId: String(details.params['client_id']) });
    if (!grant) throw new Error('grant vanished');
    const requested = String(details.params['scope'] ?? 'openid');
    grant.addOIDCScope(requested);
    // A resource asked for (RFC 8707): its scopes too.
    const resource = details.params['resource'];
    if (typeof resource === 'string') grant.addResourceScope(resource, 'api');
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const issuedTokens = new Set<string>();
  /** Reads the token answer as it goes out, for issuedTokens. */
  function recordIssued(res: ServerResponse): void {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
    const keep = (chunk: unknown) => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) chunks.push(Buffer.from(chunk as string));
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') keep(chunk);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        for (const field of ['access_token', 'refresh_token', 'id_token']) if (typeof body[field] === 'string') issuedTokens.add(body[field]);
      } catch {
        // not a token answer
      }
      return end(chunk, ...rest);
    }) as typeof res.end;
  }

  const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;

  async function completeAuthorization(authorizationUrl: string): Promise<string> {
    const jar = new Map<string, string>();
    let next = authorizationUrl;
    for (let hop = 0; hop < 12; hop++) {
      if (!next.startsWith(issuer)) return next; // left the server: the client's redirect URI
      const response = await fetch(next, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const eq = pair!.indexOf('=');
        jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
      }
      const location = response.headers.get('location');
      await response.arrayBuffer();
      if (!location) throw new Error(`authorization stopped at HTTP ${response.status} (${next})`);
      next = new URL(location, next).toString();
    }
    throw new Error('too many redirects in the authorization flow');
  }

  const self: AuthServer = {
    issuer,
    port,
    tokenUrl: `${issuer}/token`,
    authUrl: `${issuer}/auth`,
    deviceUrl: `${issuer}/device/auth`,
    revokeUrl: `${issuer}/token/revocation`,
    introspectUrl: `${issuer}/token/introspection`,
    provider,
    issuedTokens,
    tokenCalls,
    totalTokenCalls: () => Object.values(tokenCalls).reduce((a, b) => a + b, 0),
    get tokenArrivals() {
      return tokenArrivals;
    },
    get mode() {
      return state.mode;
    },
    set mode(value: EndpointMode) {
      state.mode = value;
    },
    get slowMs() {
      return state.slowMs;
    },
    set slowMs(value: number) {
      state.slowMs = value;
    },
    get accessTokenTtl() {
      return state.accessTokenTtl;
    },
    set accessTokenTtl(value: number) {
      state.accessTokenTtl = value;
    },
    async introspect(token) {
      return (await self.inspect(token))['active'] === true;
    },
    async inspect(token) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
      return (await response.json()) as Record<string, unknown>;
    },
    async obtainTokens(options = {}) {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const redirectUri = options.redirectUri ?? 'http://127.0.0.1:53682/callback';
      const params = new URLSearchParams({
        client_id: CLIENT_ID,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: options.scope ?? 'openid offline_access api',
        state: randomBytes(8).toString('hex'),
        code_challenge: challenge,
        code_challenge_method: 'S256',
        prompt: 'consent',
      });
      const final = new URL(await completeAuthorization(`${issuer}/auth?${params}`));
      const code = final.searchParams.get('code');
      if (!code) throw new Error(`no code in the redirect: ${final.searchParams.get('error') ?? 'unknown error'}`);
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }).toString(),
      });
      const tokens = (await response.json()) as TokenResponse & { error?: string };
      if (!response.ok) throw new Error(`token exchange failed: ${tokens.error}`);
      return tokens;
    },
    completeAuthorization,
    async approveDevice(userCode, scope = 'openid offline_access api') {
      // Stored normalised, as the provider's own verification page does: no mask characters, upper case.
      const code = await provider.DeviceCode.findByUserCode(userCode.replace(/[^a-z0-9]/gi, '').toUpperCase());
      if (!code) throw new Error('unknown user code');
      const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: code.clientId });
      grant.addOIDCScope(scope);
      const grantId = await grant.save();
      Object.assign(code, { grantId, accountId: ACCOUNT_ID, scope, authTime: Math.floor(Date.now() / 1000) });
      await code.save();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return self;
}

/** fetch that reaches `hostname` on 127.0.0.1 and trusts the test CA, for the helper's own calls to its TLS server. */
function loopbackFetch(hostname: string): typeof globalThis.fetch {
  const dispatcher = new Agent({
    connect: {
      ca: TLS_FIXTURES.ca,
      lookup: (host, options, callback) => {
        if (host !== hostname) return callback(new Error(`not ${hostname}`), '', 4);
        if ((options as { all?: boolean }).all)
          return (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
        callback(null, '127.0.0.1', 4);
      },
    },
  });
  return ((input: string | URL, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as typeof globalThis.fetch;
}
