// Anomaly under proxy.workers: 2 (issue 90, item 2), through `keyway start` in a child process: the
// workers share each agent's history through the store, as they share quotas. What one worker
// learned (an alert's first use) is usual at the other, and the counts of both add up to a burst
// that neither worker's own would make. Each request on a connection of its own, so the kernel
// picks a worker for each; `keyway status --json` shows that both served.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { cleanEnv, onePerRequest, runCli } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API_TOKEN = `canary-anomaly-${randomBytes(8).toString('hex')}`;
const BOT_KEY = `bot-${randomBytes(12).toString('hex')}`;

type Line = { path?: string; phase?: string; signal?: Array<{ name: string }> };

describe('anomaly under proxy.workers: 2: one history in the store', () => {
  let upstream: TestUpstream;
  let child: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${API_TOKEN}` });
    home = writeChildHome({
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      agents: { bot: { key: 'env:BOT_KEY' } },
      anomaly: { mode: 'alert', signals: { burst: { per: '1m', factor: 5 } } },
    });
    const yamlPath = join(home, 'config', 'keyway.yaml');
    const { parse, stringify } = await import('yaml');
    const config = parse(readFileSync(yamlPath, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    (await import('node:fs')).writeFileSync(yamlPath, stringify(config));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY });
    child = await startChildProxy({ cli: SRC_CLI, home, env });
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });

  afterAll(async () => {
    if (child !== undefined && child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    if (child !== undefined) {
      expect(child.stdout() + child.stderr(), "a secret in keyway's output").not.toContain(API_TOKEN);
      expect(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'), 'a secret in the audit log').not.toContain(API_TOKEN);
    }
    await upstream?.close();
  });

  async function fresh(path: string): Promise<number> {
    const dispatcher = new ProxyAgent({ uri: `http://bot:${BOT_KEY}@127.0.0.1:${child.port}`, requestTls: { ca: [ca] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
      await res.body.dump();
      return res.statusCode;
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  }

  const lines = (): Line[] => onePerRequest(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')) as Line[];
  const marked = (name: string) => lines().filter((l) => l.signal?.some((s) => s.name === name));

  it('a first use learned at one worker is usual at the other; their counts add up to a burst', async () => {
    // The window is the real minute: start early in one, so the whole test falls in it.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 30_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
    expect(await fresh('/w/x/0')).toBe(200);
    expect(marked('first_use').map((l) => l.path)).toEqual(['/w/x/0']);
    // The other worker rereads the store (its change feed): within a second or two.
    await new Promise((r) => setTimeout(r, 3_000));
    // 8 more, 4 at a time: 9 in the window, under the floor's limit of 10 whichever worker took each.
    for (let wave = 0; wave < 2; wave++) {
      const statuses = await Promise.all([0, 1, 2, 3].map((i) => fresh(`/w/x/a${wave}-${i}`)));
      expect(statuses).toEqual([200, 200, 200, 200]);
    }
    expect(marked('first_use')).toHaveLength(1);
    expect(marked('burst')).toHaveLength(0);
    // Counts reach the store within a second, and each worker rereads it.
    await new Promise((r) => setTimeout(r, 3_000));
    for (let i = 0; i < 4; i++) expect(await fresh(`/w/x/b${i}`)).toBe(200);
    // 13 in the window: past 10 when the two workers' counts are added (one worker's own would be only if it took 11 of the 13).
    expect(marked('burst').length).toBeGreaterThanOrEqual(1);
    const out = await runCli(['status', '--json', '--home', home], env);
    const perWorker = (JSON.parse(out.stdout) as { workers: { requests: number | null }[] }).workers.map((w) => w.requests ?? 0);
    expect(perWorker).toHaveLength(2);
    for (const n of perWorker) expect(n).toBeGreaterThan(0);
  });
});
