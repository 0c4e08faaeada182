// Defect 10: the admin API answers only to Host values that name its own listener, so a page that
// rebinds its own DNS name to 127.0.0.1 cannot read it. Raw requests, so the Host is exactly ours.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { exchange, parseResponse, type RawResponse } from '../helpers/raw-http.ts';

describe('admin API Host check (DNS rebinding)', () => {
  let proxy: TestProxy;
  let port: number;
  let token: string;

  beforeAll(async () => {
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    port = proxy.running.adminAddress!.port;
    token = readFileSync(join(proxy.home, 'data', 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  /** One request on its own connection, with exactly the given Host line (or none). */
  async function send(path: string, host: string | null, auth = true): Promise<RawResponse> {
    const socket = connect({ host: '127.0.0.1', port });
    const lines = [
      `GET ${path} HTTP/1.1`,
      ...(host === null ? [] : [`Host: ${host}`]),
      ...(auth ? [`Authorization: Bearer ${token}`] : []),
      'Connection: close',
    ];
    return parseResponse(await exchange(socket, `${lines.join('\r\n')}\r\n\r\n`));
  }

  it.each([
    'evil.example',
    'evil.example:PORT',
    'attacker.test:PORT',
    '127.0.0.1.evil.example:PORT',
    'localhost.evil.example:PORT',
    '0.0.0.0:PORT',
    '127.0.0.1:1',
    'localhost:1',
  ])('refuses Host %s with 403 host_not_allowed on /api/ and /healthz, even with the admin token', async (template) => {
    const host = template.replace('PORT', String(port));
    for (const path of ['/api/grants', '/healthz', '/']) {
      const res = await send(path, host);
      expect(res.status, `${path} with Host ${host}`).toBe(403);
      expect(res.headers['x-keyway-error']).toBe('host_not_allowed');
      const body = JSON.parse(res.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('host_not_allowed');
      // The received Host is not echoed back.
      expect(res.body).not.toContain('evil');
      expect(res.body).not.toContain(CANARY);
    }
  });

  it('refuses a request with no Host at all', async () => {
    const socket = connect({ host: '127.0.0.1', port });
    const res = parseResponse(await exchange(socket, `GET /healthz HTTP/1.0\r\n\r\n`));
    expect(res.status).toBe(403);
  });

  it.each(['127.0.0.1:PORT', 'localhost:PORT', 'LOCALHOST:PORT', '[::1]:PORT', 'localhost.:PORT'])('answers Host %s', async (template) => {
    const host = template.replace('PORT', String(port));
    expect((await send('/healthz', host, false)).status).toBe(200);
    const grants = await send('/api/grants', host);
    expect(grants.status).toBe(200);
    expect(grants.body).toContain('github');
    // The token is still required on an allowed Host.
    expect((await send('/api/grants', host, false)).status).toBe(401);
  });
});

describe('admin API authorization', () => {
  let proxy: TestProxy;
  let port: number;

  beforeAll(async () => {
    proxy = await startProxy();
    port = proxy.running.adminAddress!.port;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it.each([[''], ['Authorization: Bearer '], ['Authorization: Bearer    '], ['X-API-Key: '], ['Authorization: Basic Og==']])(
    'refuses %j with 401',
    async (header) => {
      const socket = connect({ host: '127.0.0.1', port });
      const lines = ['GET /api/grants HTTP/1.1', `Host: 127.0.0.1:${port}`, ...(header ? [header] : []), 'Connection: close'];
      const res = parseResponse(await exchange(socket, `${lines.join('\r\n')}\r\n\r\n`));
      expect(res.status).toBe(401);
    },
  );

  it('takes the token as X-API-Key too', async () => {
    const token = readFileSync(join(proxy.home, 'data', 'admin.token'), 'utf8').trim();
    const socket = connect({ host: '127.0.0.1', port });
    const res = parseResponse(
      await exchange(socket, `GET /api/grants HTTP/1.1\r\nHost: localhost:${port}\r\nX-API-Key: ${token}\r\nConnection: close\r\n\r\n`),
    );
    expect(res.status).toBe(200);
  });
});

describe('admin.allowed_hosts', () => {
  let proxy: TestProxy;
  let port: number;

  beforeAll(async () => {
    proxy = await startProxy({ config: { admin: { allowed_hosts: ['keyway', 'admin.test:1'] } } });
    port = proxy.running.adminAddress!.port;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const status = async (host: string) =>
    parseResponse(await exchange(connect({ host: '127.0.0.1', port }), `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).status;

  it('answers the listed names (any port when none is given, else that port only), and still refuses others', async () => {
    expect(await status('keyway')).toBe(200);
    expect(await status(`keyway:${port}`)).toBe(200);
    expect(await status('KEYWAY:18788')).toBe(200);
    expect(await status('admin.test:1')).toBe(200);
    expect(await status(`admin.test:${port}`)).toBe(403);
    expect(await status(`keyway.evil.example:${port}`)).toBe(403);
    expect(await status(`localhost:${port}`)).toBe(200);
  });
});
