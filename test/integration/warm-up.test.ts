// keyway warms its request path up before it serves (issue 92, src/warm-up/): a throwaway keyway on
// loopback, in a temporary home, that admits only its own client. These tests start `keyway start`
// as a user does and check that the warm-up ran, left nothing behind, wrote nothing to the real home
// and leaked nothing; and attack the throwaway keyway while it serves.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startKeyway } from '../../src/app/index.ts';
import { createAppLogger } from '../../src/log/logger.ts';
import { warmUp, type WarmUpResult } from '../../src/warm-up/warm-up.ts';
import { WARM_UP_AGENT, WARM_UP_HOST } from '../../src/warm-up/warm-up-config.ts';
import { type ChildProxy, startChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome } from '../helpers/keyway.ts';
import { openConnect } from '../helpers/raw-http.ts';
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
      else expect(warmed).toBeDefined();
      expect(Number((warmed ?? early)?.['requests'])).toBeGreaterThan(100);
      // The throwaway home is gone, the stale one swept, the recent one left alone.
      expect(warmUpHomes(tmp).sort()).toEqual(['keyway-warm-up-running']);

      expect(await getThrough(proxy)).toBe(200);
      expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
      const audit = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8');
      expect(audit).toContain(API_HOST);
      expect(audit).not.toContain(WARM_UP_HOST);
      expect(audit).not.toContain(WARM_UP_AGENT);
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
  it('admits only its own client: no key, a wrong key or another host is refused; its upstream refuses a wrong credential', async () => {
    const tried: Array<[string, number]> = [];
    // A temp folder of this test's own: other test files' keyways warm up in the shared one meanwhile.
    const tmp = privateTmp();
    const shared = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    const restore = () => {
      if (shared === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = shared;
    };
    const result: WarmUpResult = await warmUp(startKeyway, createAppLogger({ level: 'silent' }), {
      onListening: async ({ proxyPort, upstreamPort, caPem }) => {
        const connect = async (what: string, authority: string, headers = '') => {
          const { socket, status } = await openConnect(proxyPort, authority, headers);
          socket.destroy();
          tried.push([what, status]);
        };
        const basic = (user: string, key: string) => `Proxy-Authorization: Basic ${Buffer.from(`${user}:${key}`).toString('base64')}\r\n`;
        await connect('the host, no key', `${WARM_UP_HOST}:${upstreamPort}`);
        await connect('the host, a wrong key', `${WARM_UP_HOST}:${upstreamPort}`, basic(WARM_UP_AGENT, 'guessed'));
        await connect('another name, no key', `${API_HOST}:${upstream.port}`);
        await connect('a loopback port, no key', `127.0.0.1:${upstream.port}`);
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
      },
    }).finally(restore);
    expect(tried).toEqual([
      ['the host, no key', 407],
      ['the host, a wrong key', 407],
      ['another name, no key', 407],
      ['a loopback port, no key', 407],
      ['its upstream, a wrong credential', 401],
    ]);
    // With the key, the same proxy and upstream answered the warm-up's own requests.
    expect(result.stopped === undefined || /ms were up$/.test(result.stopped)).toBe(true);
    expect(result.requests).toBeGreaterThan(100);
    expect(warmUpHomes(tmp)).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]); // nothing else of it either
    rmSync(tmp, { recursive: true, force: true });
  });
});
