import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenEndpoint } from '../../src/credentials/issuing/token-endpoint.ts';
import { KeywayError } from '../../src/errors/index.ts';
import { pollDeviceToken, type DeviceAuthorization } from '../../src/oauth/device-flow.ts';

// The device-flow polling rules (RFC 8628 3.5) against a scripted token endpoint on loopback; the
// waits are recorded instead of slept.

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

async function scriptedEndpoint(answers: Array<{ status: number; body: object }>): Promise<{ endpoint: TokenEndpoint; calls: () => number }> {
  let calls = 0;
  server = createServer((req, res) => {
    req.resume();
    const answer = answers[Math.min(calls, answers.length - 1)]!;
    calls++;
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: { tokenUrl: `http://127.0.0.1:${port}/token`, clientId: 'c', clientSecret: undefined, clientAuth: 'body', bodyFormat: 'form', extraParams: {} },
    calls: () => calls,
  };
}

const device = (): DeviceAuthorization => ({
  deviceCode: 'dc',
  userCode: 'ABCD',
  verificationUri: 'https://x.test/device',
  verificationUriComplete: undefined,
  expiresAt: Date.now() + 60_000,
  intervalMs: 5_000,
});

describe('device flow polling', () => {
  it('waits on authorization_pending, adds 5 s on slow_down, then returns the tokens', async () => {
    const { endpoint, calls } = await scriptedEndpoint([
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error: 'slow_down' } },
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 200, body: { access_token: 'at', refresh_token: 'rt', expires_in: 60 } },
    ]);
    const waits: number[] = [];
    const tokens = await pollDeviceToken(endpoint, device(), { timeoutMs: 2_000, sleep: async (ms) => void waits.push(ms) });
    expect(tokens.accessToken).toBe('at');
    expect(tokens.refreshToken).toBe('rt');
    expect(waits).toEqual([5_000, 5_000, 10_000, 10_000]);
    expect(calls()).toBe(4);
  });

  it.each([
    ['expired_token', /expired/],
    ['access_denied', /denied/],
  ])('stops on %s with a clear message', async (error, message) => {
    const { endpoint } = await scriptedEndpoint([{ status: 400, body: { error } }]);
    const failure = await pollDeviceToken(endpoint, device(), { timeoutMs: 2_000, sleep: async () => undefined }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(KeywayError);
    expect((failure as Error).message).toMatch(message);
  });

  it('gives up when the device code expires, without polling past it', async () => {
    const { endpoint, calls } = await scriptedEndpoint([{ status: 400, body: { error: 'authorization_pending' } }]);
    const expiring = { ...device(), expiresAt: Date.now() - 1 };
    await expect(pollDeviceToken(endpoint, expiring, { timeoutMs: 2_000, sleep: async () => undefined })).rejects.toThrow(/expired/);
    expect(calls()).toBe(0);
  });
});
