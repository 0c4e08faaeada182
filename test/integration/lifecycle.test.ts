import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, cliCommand, makeHome } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { openConnect, openTunnel } from '../helpers/raw-http.ts';
import { openSlow } from '../helpers/slow-client.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// keyway start and stop as a user runs them, in a child process: start is all or nothing (a port
// in use closes what was opened and says so in one line), and SIGTERM drains and exits 0.

function writeConfig(home: string, proxy: Record<string, unknown> = {}): void {
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({
      proxy: {
        upstream_ca: [TLS_FIXTURES.caPath],
        allow_networks: ['127.0.0.0/8'],
        hosts: { 'api.example.test': '127.0.0.1', 'tunnel.example.test': '127.0.0.1' },
        ...proxy,
      },
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
    }),
  );
}

function newEnv(): Record<string, string> {
  return cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: CANARY });
}

/** `keyway start` expected to fail: its exit code, its stderr, and how long it took. */
function failedStart(home: string, env: Record<string, string>, args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(...cliCommand(['start', '--home', home, ...args]), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return once(child, 'exit').then(([code]) => {
    clearTimeout(timer);
    return { code: code as number | null, stderr, ms: Date.now() - started };
  });
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

function leftovers(home: string): string[] {
  const data = join(home, 'data');
  return existsSync(data) ? readdirSync(data).filter((f) => f.endsWith('.tmp') || f === 'proxy.json') : [];
}

describe('keyway start is all or nothing', () => {
  it('exits 1 with one line naming the admin port when it is taken, leaving nothing behind', async () => {
    const home = makeHome();
    writeConfig(home);
    const held = await holdPort();
    try {
      const result = await failedStart(home, newEnv(), ['--listen', `127.0.0.1:${await freePort()}`, '--admin-listen', `127.0.0.1:${held.port}`]);
      expect(result.code).toBe(1);
      const lines = result.stderr.trim().split('\n');
      expect(lines, result.stderr).toHaveLength(1);
      expect(lines[0]).toContain(`127.0.0.1:${held.port} (admin.listen)`);
      expect(lines[0]).toContain('in use');
      // The flag that moves the admin listener, not the proxy's.
      expect(lines[0]).toContain('start with --admin-listen HOST:PORT to use another port (127.0.0.1:0 takes a free one), or set admin.listen in the config');
      expect(leftovers(home)).toEqual([]);
    } finally {
      held.server.close();
    }
  });

  it('exits 1 with one line naming the proxy port when it is taken', async () => {
    const home = makeHome();
    writeConfig(home);
    const held = await holdPort();
    try {
      const result = await failedStart(home, newEnv(), ['--listen', `127.0.0.1:${held.port}`, '--admin-listen', '127.0.0.1:0']);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
      expect(result.stderr).toContain(`127.0.0.1:${held.port} (proxy.listen)`);
      expect(leftovers(home)).toEqual([]);
    } finally {
      held.server.close();
    }
  });

  it('names the keyway process already on the port, and leaves its data/proxy.json alone', async () => {
    const home = makeHome();
    writeConfig(home);
    const env = newEnv();
    const first = await startChildProxy({ home, env });
    try {
      const announced = readFileSync(join(home, 'data', 'proxy.json'), 'utf8');
      const result = await failedStart(home, env, ['--listen', `127.0.0.1:${first.port}`, '--admin-listen', '127.0.0.1:0']);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
      expect(result.stderr).toContain(`127.0.0.1:${first.port} (proxy.listen)`);
      expect(result.stderr).toContain(`keyway pid ${first.child.pid}`);
      expect(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')).toBe(announced);
      expect(readdirSync(join(home, 'data')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  });
});

describe('SIGTERM drains and exits', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  const start = async (proxy: Record<string, unknown> = {}) => {
    const home = makeHome();
    writeConfig(home, proxy);
    return { home, keyway: await startChildProxy({ home, env: newEnv() }) };
  };
  const exitOf = (keyway: ChildProxy) => once(keyway.child, 'exit').then(([code]) => code as number | null);
  /** Resolves once the upstream has the request sent after it had seen `before` (a fixed sleep was too short under load). */
  const withUpstream = (before: number) => waitFor(() => (upstream.seen.length > before ? true : undefined), 'the request to reach the upstream');
  const client = (keyway: ChildProxy, home: string) =>
    new ProxyAgent({ uri: `http://127.0.0.1:${keyway.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });

  it('exits 0 promptly with connections open (a waiting CONNECT, one kept alive after a request, a blind tunnel, the admin API), and removes data/proxy.json', async () => {
    const { home, keyway } = await start();
    const target = {
      proxyPort: keyway.port,
      authority: `api.example.test:${upstream.port}`,
      servername: 'api.example.test',
      ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8'),
    };
    const sockets = [
      (await openConnect(keyway.port, target.authority)).socket,
      await openSlow('idle-keepalive', target),
      await openTunnel(keyway.port, `tunnel.example.test:${upstream.port}`),
    ];
    // And a kept-alive connection to the admin API, after a request.
    const admin = (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } }).admin;
    const adminSocket = netConnect({ host: '127.0.0.1', port: admin.port });
    adminSocket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${admin.port}\r\n\r\n`);
    await once(adminSocket, 'data');
    sockets.push(adminSocket);
    for (const s of sockets) s.on('error', () => undefined);
    const started = Date.now();
    const exited = exitOf(keyway);
    keyway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Promptly: not the drain_timeout (10 s). 3 s idle, the slack stretched by the measured load.
    expect(Date.now() - started).toBeLessThan(slack(3_000, 8_000));
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);
    for (const s of sockets) s.destroy();
  });

  it('lets a request in flight finish, then exits 0', async () => {
    const { home, keyway } = await start();
    const dispatcher = client(keyway, home);
    try {
      const before = upstream.seen.length;
      const pending = request(`https://api.example.test:${upstream.port}/slow?ms=1500`, { dispatcher });
      await withUpstream(before); // the request is with the upstream now
      const exited = exitOf(keyway);
      keyway.child.kill('SIGTERM');
      const res = await pending;
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('slow');
      expect(await exited).toBe(0);
    } finally {
      await dispatcher.destroy();
    }
  });

  it('cuts a request that outlasts proxy.drain_timeout, then exits 0', async () => {
    const { home, keyway } = await start({ drain_timeout: '1s' });
    const dispatcher = client(keyway, home);
    try {
      const before = upstream.seen.length;
      const pending = request(`https://api.example.test:${upstream.port}/slow?ms=30000`, { dispatcher }).then(
        (r) => r.statusCode,
        (err: Error) => err.name,
      );
      await withUpstream(before);
      const started = Date.now();
      const exited = exitOf(keyway);
      keyway.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(1_000 + slack(3_000, 10_000)); // the drain_timeout, plus slack for the load
      expect(await pending).not.toBe(200);
    } finally {
      await dispatcher.destroy();
    }
  });

  it('exits at once, with 143, on a second SIGTERM during the drain', async () => {
    const { home, keyway } = await start({ drain_timeout: '30s' });
    const dispatcher = client(keyway, home);
    try {
      const before = upstream.seen.length;
      const pending = request(`https://api.example.test:${upstream.port}/slow?ms=30000`, { dispatcher }).catch(() => undefined);
      await withUpstream(before);
      const exited = exitOf(keyway);
      keyway.child.kill('SIGTERM');
      // The second signal once keyway is draining, not before it has read the first.
      await waitFor(() => (keyway.stderr().includes('stopping') ? true : undefined), 'keyway to start draining');
      const started = Date.now();
      keyway.child.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(Date.now() - started).toBeLessThan(slack(2_000, 10_000)); // not the drain_timeout (30 s)
      expect(keyway.stderr()).toContain('exiting without waiting');
      await pending;
    } finally {
      await dispatcher.destroy();
    }
  });
});
