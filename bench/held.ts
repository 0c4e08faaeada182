// What the agent's held values cost (issue 59): every real value keyway holds that could reach an
// agent is looked for in every answer of its connections (src/proxy/leak-guard/held.ts). Measured
// as s2, s8 and s10 through a second keyway of this build whose config adds a login_capture grant
// holding 16 logins (32 captured tokens, each with every encoded form the leak guard knows), paired
// round by round with the same load through the first keyway, which holds none. The logins are made
// through the second keyway at a small loopback token endpoint before the rounds, and checked to be
// captured (the answers hold placeholders).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProxyAgent, request } from 'undici';
import type { KeywayChildOptions } from './keyway-child.ts';

/** The logins held in the measured run: login_capture keeps at most 16 per grant and agent. */
export const HELD_LOGINS = 16;

export interface LoginEndpoint {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** POST /token: a new access and refresh token each time, as a client-credentials login answers. */
export async function startLoginEndpoint(): Promise<LoginEndpoint> {
  const server = createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      if (req.method !== 'POST' || req.url !== '/token') return void res.writeHead(404).end();
      const body = JSON.stringify({
        access_token: `bench-at-${randomBytes(24).toString('base64url')}`,
        refresh_token: `bench-rt-${randomBytes(24).toString('base64url')}`,
        token_type: 'Bearer',
        expires_in: 3600,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/token`, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The keyway options with the capture grant added (its domains are no bench host: nothing is sent there). */
export function withCaptureGrant(options: KeywayChildOptions, endpoint: LoginEndpoint): KeywayChildOptions {
  const config = options.config as { grants?: Record<string, unknown> };
  return {
    ...options,
    config: {
      ...options.config,
      grants: {
        ...(config.grants ?? {}),
        'bench-login': {
          type: 'login_capture',
          domains: ['api.bench-login.test'],
          allow_http: true,
          capture: { endpoints: [{ host: `127.0.0.1:${endpoint.port}`, path: '/token' }] },
        },
      },
    },
  };
}

/** `count` logins through the proxy, each answer checked to carry placeholders only. */
export async function logInThrough(proxyUrl: string, endpoint: LoginEndpoint, count = HELD_LOGINS): Promise<void> {
  const dispatcher = new ProxyAgent({ uri: proxyUrl });
  try {
    for (let i = 0; i < count; i++) {
      const answer = await request(endpoint.url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const text = await answer.body.text();
      if (answer.statusCode !== 200 || text.includes('bench-at-') || !text.includes('kwcap_')) {
        throw new Error(`login ${i + 1} through keyway was not captured (${answer.statusCode})`);
      }
    }
  } finally {
    await dispatcher.close();
  }
}
