import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { exchange, openConnect, parseResponse } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Issue 21: one agent must not reach another keyway. With loopback in proxy.allow_networks, an agent
// of one keyway reached another home's proxy (and so its grants, as that keyway's anonymous local
// agent), its admin API, and `keyway fetch`'s in-process proxy: each keyway knew only its own ports.
// Every keyway now refuses every keyway listener on the host (a shared registry of listeners), and
// fetch's proxy serves only the fetch that started it.

const DEFAULT_REGISTRY = '/tmp/keyway-listeners';

function writeConfig(home: string): void {
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({
      proxy: {
        upstream_ca: [TLS_FIXTURES.caPath],
        allow_networks: ['127.0.0.0/8'],
        hosts: { 'api.example.test': '127.0.0.1', 'tunnel.example.test': '127.0.0.1' },
      },
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
    }),
  );
}

/** A child `keyway start` on its own home, with the default registry (no KEYWAY_LISTENERS_DIR). */
async function startHome(): Promise<{ home: string; keyway: ChildProxy; adminPort: number }> {
  const home = makeHome();
  writeConfig(home);
  const { KEYWAY_LISTENERS_DIR: _fileRegistry, ...env } = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: CANARY });
  const keyway = await startChildProxy({ home, env });
  const announced = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
  return { home, keyway, adminPort: announced.admin.port };
}

/** A plain http:// request through the proxy at `proxyPort` (raw socket: nothing rewrites it). */
async function plainGet(proxyPort: number, authority: string): Promise<ReturnType<typeof parseResponse>> {
  const raw = await exchange(connect(proxyPort, '127.0.0.1'), `GET http://${authority}/healthz HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
  return parseResponse(raw);
}

/** CONNECT with the given extra head lines; the answer's status line and head. */
function connectWith(port: number, authority: string, lines: string[]): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('CONNECT got no answer'));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.destroy();
      const head = buffered.slice(0, end);
      resolve({ status: Number(head.split(' ')[1]), head });
    });
    socket.once('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`);
  });
}

const registryEntries = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as { pid: number; listeners: Array<{ kind: string; host: string; port: number }> });

describe('two keyways of two homes, default registry (allow_networks: 127.0.0.0/8)', () => {
  let a: Awaited<ReturnType<typeof startHome>>;
  let b: Awaited<ReturnType<typeof startHome>>;
  let upstream: TestUpstream;
  let plainUpstream: TestUpstream;

  beforeAll(async () => {
    upstream = await startUpstream();
    plainUpstream = await startUpstream({ tls: 'plain' });
    [a, b] = await Promise.all([startHome(), startHome()]);
  });
  afterAll(async () => {
    await a?.keyway.stop();
    await b?.keyway.stop();
    await upstream?.close();
    await plainUpstream?.close();
  });

  it('each announced its listeners in /tmp/keyway-listeners', () => {
    const entries = registryEntries(DEFAULT_REGISTRY);
    for (const k of [a, b]) {
      // By pid and port: an entry a killed keyway left behind may carry a pid the system has since reused.
      const entry = entries.find((e) => e.pid === k.keyway.child.pid && e.listeners.some((l) => l.kind === 'proxy' && l.port === k.keyway.port));
      expect(entry?.listeners).toEqual([
        { kind: 'proxy', host: '127.0.0.1', port: k.keyway.port },
        { kind: 'admin', host: '127.0.0.1', port: k.adminPort },
      ]);
    }
  });

  it("refuses an agent of A a CONNECT to B's proxy and admin ports, by address and by a name mapped to loopback", async () => {
    for (const authority of [
      `127.0.0.1:${b.keyway.port}`,
      `127.0.0.1:${b.adminPort}`,
      `[::ffff:127.0.0.1]:${b.keyway.port}`,
      `api.example.test:${b.keyway.port}`,
      `tunnel.example.test:${b.adminPort}`,
    ]) {
      const { socket, status, head } = await openConnect(a.keyway.port, authority);
      socket.destroy();
      expect(status, authority).toBe(403);
      expect(head.toLowerCase()).toContain('x-keyway-error: host_not_allowed');
      const kind = authority.endsWith(`:${b.adminPort}`) ? 'admin' : 'proxy';
      expect(head, authority).toContain(`is another keyway's ${kind} listener on this host`);
    }
    // And B's agents cannot reach A either.
    const { socket, status } = await openConnect(b.keyway.port, `127.0.0.1:${a.keyway.port}`);
    socket.destroy();
    expect(status).toBe(403);
  });

  it("refuses a plain http:// request through A to B's proxy and admin ports", async () => {
    for (const port of [b.keyway.port, b.adminPort]) {
      const res = await plainGet(a.keyway.port, `127.0.0.1:${port}`);
      expect(res.status, `port ${port}`).toBe(403);
      expect(res.headers['x-keyway-error']).toBe('host_not_allowed');
      expect(JSON.parse(res.body).error.message).toContain("another keyway's");
    }
  });

  it('still lets an agent of A reach an ordinary loopback upstream that allow_networks allows', async () => {
    const { socket, status } = await openConnect(a.keyway.port, `tunnel.example.test:${upstream.port}`);
    socket.destroy();
    expect(status).toBe(200);
    const res = await plainGet(a.keyway.port, `127.0.0.1:${plainUpstream.port}`);
    expect(res.status).toBe(200);
    expect(plainUpstream.seen.at(-1)?.url).toBe('/healthz');
  });

  it('a keyway killed with SIGKILL leaves its entry, which is ignored and pruned: its port is no longer refused', async () => {
    const killed = await startHome();
    const { socket, status } = await openConnect(a.keyway.port, `127.0.0.1:${killed.keyway.port}`);
    socket.destroy();
    expect(status).toBe(403);
    killed.keyway.child.kill('SIGKILL');
    await new Promise((resolve) => killed.keyway.child.once('exit', resolve));
    // Nothing listens there now: A tries, and says the upstream is unreachable (not "another keyway").
    const after = await openConnect(a.keyway.port, `127.0.0.1:${killed.keyway.port}`);
    after.socket.destroy();
    expect(after.status).toBe(502);
    // A, asked about that port, found the pid gone and removed the entry it left.
    expect(registryEntries(DEFAULT_REGISTRY).some((e) => e.pid === killed.keyway.child.pid)).toBe(false);
    // Leave the shared directory as it was.
    for (const name of readdirSync(DEFAULT_REGISTRY).filter((n) => n.startsWith(`${killed.keyway.child.pid}-`))) rmSync(join(DEFAULT_REGISTRY, name));
  });

  it('a keyway that stops removes its entry', async () => {
    const stopped = await startHome();
    const pid = stopped.keyway.child.pid;
    expect(registryEntries(DEFAULT_REGISTRY).some((e) => e.pid === pid)).toBe(true);
    expect(await stopped.keyway.stop()).toBe(0);
    expect(registryEntries(DEFAULT_REGISTRY).some((e) => e.pid === pid)).toBe(false);
  });
});

describe("keyway fetch's in-process proxy", () => {
  let upstream: TestUpstream;
  let other: TestProxy;
  let fetchHome: TestProxy;
  const held: Array<() => void> = [];

  beforeAll(async () => {
    upstream = await startUpstream({
      handler: (req, res) => {
        if (!req.url?.startsWith('/hold')) return false;
        held.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('released'));
        return true;
      },
    });
    // The home fetch runs on: no agents (its proxy serves the anonymous local agent), a grant.
    fetchHome = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    await fetchHome.stop();
    // Another keyway on the host (this file's registry, as the fetch child's).
    other = await startProxy();
  });
  afterAll(async () => {
    for (const release of held.splice(0)) release();
    await other?.stop();
    await upstream?.close();
  });

  it('serves only its own request (407 to any other client), and another keyway refuses it as a destination', async () => {
    const dir = process.env['KEYWAY_LISTENERS_DIR']!;
    const env = { KEYWAY_HOME: fetchHome.home, HOME: fetchHome.home, KEYWAY_LISTENERS_DIR: dir, ...fetchHome.env };
    const fetching = runCli(['fetch', `https://api.example.test:${upstream.port}/hold`], env);
    await waitFor(() => (held.length > 0 ? true : undefined), 'the fetch request upstream', 15_000);
    const entry = registryEntries(dir).find((e) => e.pid !== process.pid);
    const fetchProxy = entry?.listeners.find((l) => l.kind === 'proxy');
    expect(fetchProxy, JSON.stringify(registryEntries(dir))).toBeDefined();
    const port = fetchProxy!.port;

    // An outside client: none, or wrong, proxy credentials.
    const target = `api.example.test:${upstream.port}`;
    const basic = (user: string, pass: string) => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    for (const lines of [[], [basic('keyway-fetch', 'guess')], [basic('keyway-fetch', '')], [basic('bot', 'x'.repeat(43))]]) {
      const answer = await connectWith(port, target, lines);
      expect(answer.status, lines.join()).toBe(407);
      expect(answer.head).toContain('serves only the keyway fetch that started it');
    }
    const plain = await plainGet(port, `127.0.0.1:${upstream.port}`);
    expect(plain.status).toBe(407);
    expect(upstream.seen.filter((s) => s.url.startsWith('/hold'))).toHaveLength(1);

    // Another keyway refuses its listeners as destinations while it runs.
    for (const l of entry!.listeners) {
      const { socket, status, head } = await openConnect(other.port, `127.0.0.1:${l.port}`);
      socket.destroy();
      expect(status, l.kind).toBe(403);
      expect(head).toContain(`is another keyway's ${l.kind} listener on this host`);
    }

    for (const release of held.splice(0)) release();
    const result = await fetching;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('released\n');
    // Its own request went through, with the grant's credential.
    expect(upstream.seen.find((s) => s.url === '/hold')?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(findLeak(result.stdout + result.stderr, CANARY)).toBeUndefined();
    // Its entry went with it.
    expect(registryEntries(dir).some((e) => e.pid === entry!.pid)).toBe(false);
  });
});
