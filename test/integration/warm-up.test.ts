// keyway warms its request path up before it serves (issue 92, src/warm-up/): a throwaway keyway on
// loopback, in a temporary home, that admits only its own client. These tests start `keyway start`
// as a user does and check that the warm-up ran, left nothing behind, wrote nothing to the real home
// and leaked nothing; and attack the throwaway keyway while it serves.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startKeyway } from '../../src/app/index.ts';
import { createAppLogger } from '../../src/log/logger.ts';
import { type StartThrowaway, warmUp, type WarmUpResult } from '../../src/warm-up/warm-up.ts';
import { WARM_UP_HOST } from '../../src/warm-up/warm-up-config.ts';
import { listenersDir } from '../../src/egress/listener-registry.ts';
import { loadOrCreateCa } from '../../src/tls/index.ts';
import { type ChildProxy, startChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome } from '../helpers/keyway.ts';
import { exchange, openConnect } from '../helpers/raw-http.ts';
import { slack } from '../helpers/load.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API_HOST = 'api.example.test';

let upstream: TestUpstream;
beforeAll(async () => {
  upstream = await startUpstream({ requireAuthorization: `Bearer ${CANARY}` });
});
afterAll(async () => {
  await upstream.close();
});

function homeWithGrant(): string {
  const home = makeHome();
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({
      proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { [API_HOST]: '127.0.0.1' } },
      grants: { api: { type: 'bearer', domains: [API_HOST], secret: 'env:API_TOKEN' } },
    }),
  );
  return home;
}

/** A temp folder of the child's own (TMPDIR), so what the warm-up leaves there is this test's to see. */
function privateTmp(): string {
  return mkdtempSync(join(tmpdir(), 'warm-up-test-'));
}

const warmUpHomes = (tmp: string) => readdirSync(tmp).filter((n) => n.startsWith('keyway-warm-up-'));

/** The JSON log lines of a child's stdout. */
function logLines(proxy: ChildProxy): Array<Record<string, unknown>> {
  return proxy
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function getThrough(proxy: ChildProxy): Promise<number> {
  const caPem = readFileSync(join(proxyHome.get(proxy)!, 'certs', 'ca.pem'), 'utf8');
  const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: [caPem, TLS_FIXTURES.ca] } });
  try {
    const res = await request(`https://${API_HOST}:${upstream.port}/echo`, { dispatcher });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await dispatcher.close();
  }
}
const proxyHome = new Map<ChildProxy, string>();

async function start(env: Record<string, string>): Promise<{ proxy: ChildProxy; home: string }> {
  const home = homeWithGrant();
  const proxy = await startChildProxy({
    home,
    env: cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: CANARY, ...env }),
  });
  proxyHome.set(proxy, home);
  return { proxy, home };
}

describe('keyway start warms up before it serves', () => {
  it('runs its request path through a throwaway keyway, then serves, with nothing of it in the real home or the temp folder', async () => {
    const tmp = privateTmp();
    // One left by a warm-up killed an hour ago, and one of a warm-up that may still be running.
    const stale = join(tmp, 'keyway-warm-up-killed');
    const recent = join(tmp, 'keyway-warm-up-running');
    mkdirSync(stale);
    mkdirSync(recent);
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(stale, hourAgo, hourAgo);
    const { proxy, home } = await start({ TMPDIR: tmp });
    try {
      const lines = logLines(proxy);
      const warmed = lines.find((l) => String(l['msg']).startsWith('warmed up:'));
      const early = lines.find((l) => String(l['msg']).startsWith('the warm-up ended early'));
      // On a loaded machine the warm-up may run out of its 4 s: then only the time may have stopped it.
      if (early) expect(String(early['stopped'])).toMatch(/ms were up$/);
      else expect(warmed).toMatchObject({ passes: 2 });
      expect(Number((warmed ?? early)?.['requests'])).toBeGreaterThan(100);
      // The throwaway home is gone, the stale one swept, the recent one left alone.
      expect(warmUpHomes(tmp).sort()).toEqual(['keyway-warm-up-running']);

      expect(await getThrough(proxy)).toBe(200);
      expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
      const audit = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
      expect(audit).toContain(API_HOST);
      expect(audit).not.toContain(WARM_UP_HOST);
      expect(audit).not.toMatch(/"agent":"w[0-9a-f]{16}"/);
      // The warm-up's secret and agent key are random and never printed; nor is the real grant's.
      const output = proxy.stdout() + proxy.stderr();
      expect(output).not.toContain(CANARY);
      expect(output).not.toMatch(/Bearer |Basic |authorization/i);
    } finally {
      await proxy.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('is left out with KEYWAY_WARM_UP=off', async () => {
    const tmp = privateTmp();
    const { proxy } = await start({ TMPDIR: tmp, KEYWAY_WARM_UP: 'off' });
    try {
      expect(logLines(proxy).some((l) => /warm/.test(String(l['msg'])))).toBe(false);
      expect(await getThrough(proxy)).toBe(200);
    } finally {
      await proxy.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('says so in one line and starts anyway when it cannot run (no temp folder)', async () => {
    const { proxy } = await start({ TMPDIR: '/nonexistent/keyway-warm-up-test' });
    try {
      const early = logLines(proxy).find((l) => String(l['msg']).startsWith('the warm-up ended early'));
      expect(early).toMatchObject({ level: 40, requests: 0 });
      expect(await getThrough(proxy)).toBe(200);
    } finally {
      await proxy.stop();
    }
  });
});

describe('the throwaway keyway, attacked while it serves', () => {
  it('admits only its own client to its one host: no key, a wrong key, a guessed agent, another name or address, absolute-form are refused', async () => {
    const tried: Array<[string, number]> = [];
    // A temp folder of this test's own: other test files' keyways warm up in the shared one meanwhile.
    const tmp = privateTmp();
    const shared = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    const restore = () => {
      if (shared === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = shared;
    };
    let published: number[] = [];
    const result: WarmUpResult = await warmUp(startKeyway, createAppLogger({ level: 'silent' }), {
      onListening: async ({ proxyPort, upstreamPort, caPem, agent, agentKey }) => {
        const connect = async (what: string, authority: string, headers = '') => {
          const { socket, status } = await openConnect(proxyPort, authority, headers);
          socket.destroy();
          tried.push([what, status]);
        };
        const basic = (user: string, key: string) => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${key}`).toString('base64')}\r\n`;
        await connect('the host, no key', `${WARM_UP_HOST}:${upstreamPort}`);
        await connect('the host, a wrong key', `${WARM_UP_HOST}:${upstreamPort}`, basic(agent, 'guessed'));
        await connect('another name, no key', `${API_HOST}:${upstream.port}`);
        // A name guessed in advance, again and again (the throttle counts wrong keys per name): the real
        // agent's name is random, so its own requests below are not locked out.
        for (let i = 0; i < 6; i++) await connect('a guessed agent', `${WARM_UP_HOST}:${upstreamPort}`, basic('warm-up', 'guessed'));
        // With the agent's own key: only the one host is admitted (unmatched: deny).
        const key = basic(agent, agentKey);
        await connect('another name, with the key', `${API_HOST}:${upstream.port}`, key);
        await connect('a loopback address, with the key', `127.0.0.1:${upstream.port}`, key);
        await connect('localhost, with the key', `localhost:${upstream.port}`, key);
        const absolute = await exchangeRaw(
          proxyPort,
          `GET http://${WARM_UP_HOST}:${upstreamPort}/warm-up HTTP/1.1\r\nHost: ${WARM_UP_HOST}:${upstreamPort}\r\n${key}Connection: close\r\n\r\n`,
        );
        tried.push(['absolute-form plain HTTP, with the key', absolute]);
        // Straight to the warm-up's upstream: a request without keyway's credential is refused there too.
        const direct = new Agent({ connect: { ca: caPem, servername: WARM_UP_HOST } });
        try {
          const res = await request(`https://127.0.0.1:${upstreamPort}/warm-up`, {
            dispatcher: direct,
            headers: { authorization: 'Bearer guessed', host: WARM_UP_HOST },
          });
          await res.body.dump();
          tried.push(['its upstream, a wrong credential', res.statusCode]);
        } finally {
          await direct.close();
        }
        // Its listener is in no registry another user can read (the host's, or the one this test uses).
        published = registryPorts(listenersDir(process.env)).filter((port) => port === proxyPort);
      },
    }).finally(restore);
    expect(tried).toEqual([
      ['the host, no key', 407],
      ['the host, a wrong key', 407],
      ['another name, no key', 407],
      ...Array.from({ length: 6 }, (): [string, number] => ['a guessed agent', expect.any(Number) as unknown as number]),
      ['another name, with the key', 403],
      ['a loopback address, with the key', 403],
      ['localhost, with the key', 403],
      ['absolute-form plain HTTP, with the key', expect.any(Number) as unknown as number],
      ['its upstream, a wrong credential', 401],
    ]);
    expect(tried.filter(([what]) => what === 'a guessed agent').every(([, status]) => status === 407 || status === 429)).toBe(true);
    const plain = tried.find(([what]) => what.startsWith('absolute-form'))![1];
    expect(plain).toBeGreaterThanOrEqual(400); // not forwarded: the grant's host is reached by CONNECT and TLS only
    expect(published).toEqual([]);
    // With the key, the same proxies and upstreams answered the warm-up's own requests, in both passes.
    expect(result.stopped).toBeUndefined();
    expect(result.passes).toBe(2);
    expect(result.requests).toBeGreaterThan(1000);
    expect(warmUpHomes(tmp)).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]); // nothing else of it either
    rmSync(tmp, { recursive: true, force: true });
  });

  it('never keeps a start waiting past its bound: a throwaway keyway that never answers is given up on', async () => {
    // A keyway that starts, then holds every connection without a word, and whose stop hangs too.
    const held: Socket[] = [];
    const silent = createNetServer((socket) => void held.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const caDir = mkdtempSync(join(tmpdir(), 'warm-up-ca-'));
    const ca = await loadOrCreateCa(caDir);
    let stops = 0;
    const hanging: StartThrowaway = async () => ({
      ca,
      proxyAddress: silent.address() as AddressInfo,
      stop: () => {
        stops++;
        return new Promise<void>(() => undefined);
      },
    });
    const started = performance.now();
    const result = await warmUp(hanging, createAppLogger({ level: 'silent' }), {
      plan: { passes: 2, sequential: 10, parallel: 10, connections: 2, maxMs: 300, graceMs: 700 },
    });
    const ms = performance.now() - started;
    try {
      expect(result.stopped).toMatch(/did not finish within 1000 ms/);
      expect(result.requests).toBe(0);
      expect(ms).toBeGreaterThanOrEqual(1000);
      expect(ms).toBeLessThan(1000 + slack(2_000, 10_000));
      expect(stops).toBeGreaterThanOrEqual(1); // the hung keyway was told to stop, in the background
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
      rmSync(caDir, { recursive: true, force: true });
    }
  });
});

/** Sends `text` on a new connection to the proxy; the answer's status. */
async function exchangeRaw(port: number, text: string): Promise<number> {
  const socket = netConnect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const answer = await exchange(socket, text);
  socket.destroy();
  return Number(answer.split(' ')[1]);
}

/** The proxy ports the entries in a listener registry name. */
function registryPorts(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    try {
      const entry = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { listeners?: Array<{ port: number }> };
      return (entry.listeners ?? []).map((l) => l.port);
    } catch {
      return [];
    }
  });
}
