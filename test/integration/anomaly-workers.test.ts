// Anomaly under proxy.workers: 2 (issue 90, item 2), through `keyway start` in a child process: the
// workers share each agent's history through the store, as they share quotas. What one worker
// learned (an alert's first use) is usual at the other, and the counts of both add up to a burst
// that neither worker's own could make.
//
// Deterministic, whichever worker the kernel gives each connection and however slowly the store's
// change feed reaches the other worker under load:
//   - each request goes on a connection of its own, and `keyway status --json` (each worker's count
//     of requests) says which worker served it, so each worker's own counts are known exactly;
//   - the other worker is asked with probes the agent's rules refuse: a refused request is judged
//     (its line names the signals) but neither counted nor learned, so probing changes nothing and
//     can go on until the store's news arrives;
//   - a verdict is read only at a worker whose own history could not give it: no first use of its
//     own (first half); its own allowed requests fewer than the burst limit (second half), so its
//     probe is a burst only if it adds the other worker's counts.
// Burst windows are an hour of the real clock; a half that began in one hour and ended in the next
// is run again with a fresh agent (it takes minutes, so the second run stays in one hour).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { cleanEnv, onePerRequest, runCli } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const API_TOKEN = `canary-anomaly-${randomBytes(8).toString('hex')}`;
const AGENTS = ['learner', 'burst-a', 'burst-b'] as const;
const KEYS = Object.fromEntries(AGENTS.map((a) => [a, `${a}-${randomBytes(12).toString('hex')}`]));
const HOUR = 3_600_000;
/** factor 2 over the floor baseline of 2: a window may hold 4 requests; a fifth is a burst. */
const LIMIT = 4;
/** Probes asked before giving up on the news reaching the other worker (each waits a little longer). */
const PROBES = 40;

type Line = { agent?: string; path?: string; status?: number; code?: string | null; signal?: Array<{ name: string }> };

describe('anomaly under proxy.workers: 2: one history in the store', () => {
  let upstream: TestUpstream;
  let child: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;
  let serial = 0;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${API_TOKEN}` });
    home = writeChildHome({
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      // Allowed: GET under /w/. Anything else is refused by the rules, after it was judged.
      agents: Object.fromEntries(
        AGENTS.map((a) => [
          a,
          { key: `env:KEY_${a.replace('-', '_').toUpperCase()}`, grants: ['api'], rules: [{ grant: 'api', methods: ['GET'], paths: ['/w/**'] }] },
        ]),
      ),
      anomaly: { mode: 'alert', signals: { new_host: false, burst: { per: '1h', factor: 2 } } },
    });
    const yamlPath = join(home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(yamlPath, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    writeFileSync(yamlPath, stringify(config));
    const keys = Object.fromEntries(AGENTS.map((a) => [`KEY_${a.replace('-', '_').toUpperCase()}`, KEYS[a]!]));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, ...keys });
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

  const lines = (): Line[] => onePerRequest(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')) as Line[];

  /** Each worker's count of the requests it served (refused ones too), in worker order. */
  async function perWorker(): Promise<number[]> {
    const out = await runCli(['status', '--json', '--home', home], env);
    expect(out.code, out.stderr).toBe(0);
    const counts = (JSON.parse(out.stdout) as { workers: { requests: number | null }[] }).workers.map((w) => w.requests ?? 0);
    expect(counts).toHaveLength(2);
    return counts;
  }

  /** One GET on a connection of its own: its line, and the worker that served it. */
  async function served(agent: string, prefix: string): Promise<{ line: Line; worker: number }> {
    const path = `${prefix}/${serial++}`;
    const before = await perWorker();
    const dispatcher = new ProxyAgent({ uri: `http://${agent}:${KEYS[agent]}@127.0.0.1:${child.port}`, requestTls: { ca: [ca] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, headersTimeout: 60_000, bodyTimeout: 60_000 });
      expect(await res.body.text()).not.toContain(API_TOKEN);
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
    // Its line, written by the primary once the worker handed it over (and counted it).
    const line = await waitFor(() => lines().find((l) => l.path === path), `the line of ${path}`, 30_000);
    const after = await perWorker();
    const moved = after.map((n, i) => n - before[i]!);
    expect(
      moved.reduce((a, b) => a + b, 0),
      `one request between two status reads (${moved})`,
    ).toBe(1);
    return { line, worker: moved.indexOf(1) };
  }

  const names = (line: Line) => (line.signal ?? []).map((s) => s.name);
  const pause = (attempt: number) => new Promise((r) => setTimeout(r, Math.min(250 * (attempt + 1), 3_000)));

  /**
   * Probes (refused by the rules: judged, never counted or learned) until one at a worker in
   * `judging` says `verdict`; returns how many probes it took. Fails if none does in PROBES.
   */
  async function probeUntil(agent: string, judging: (worker: number) => boolean, verdict: (line: Line) => boolean): Promise<number> {
    for (let attempt = 0; attempt < PROBES; attempt++) {
      const { line, worker } = await served(agent, '/probe');
      expect(line.status).toBe(403);
      if (judging(worker) && verdict(line)) return attempt + 1;
      await pause(attempt);
    }
    throw new Error(`no probe at the judging worker said so in ${PROBES}`);
  }

  it('a first use learned at one worker is usual at the other', async () => {
    const first = await served('learner', '/w/x');
    expect(first.line.status).toBe(200);
    expect(names(first.line)).toEqual(['first_use']);
    // The other worker has no first use of its own: only the store can tell it this one is known.
    const other = 1 - first.worker;
    await probeUntil(
      'learner',
      (w) => w === other,
      (line) => !names(line).includes('first_use'),
    );
    // Allowed at the other worker (a connection the kernel gives it): not marked.
    for (;;) {
      const next = await served('learner', '/w/x');
      expect(next.line.status).toBe(200);
      expect(names(next.line)).toEqual([]);
      if (next.worker === other) break;
    }
  }, 600_000);

  it('their counts add up to a burst that neither worker’s own could make', async () => {
    for (const agent of ['burst-a', 'burst-b']) {
      const began = Math.floor(Date.now() / HOUR);
      // LIMIT allowed requests in the window (a first use among them): none a burst at any worker.
      const own = [0, 0];
      for (let i = 0; i < LIMIT; i++) {
        const { line, worker } = await served(agent, '/w/b');
        expect(line.status).toBe(200);
        expect(names(line)).not.toContain('burst');
        own[worker]!++;
      }
      // A probe at a worker whose own allowed requests are under the limit is a burst only if it adds the other's.
      const probed = probeUntil(
        agent,
        (w) => own[w]! < LIMIT,
        (line) => names(line).includes('burst'),
      );
      const shared = await probed.then(
        () => true,
        (err: Error) => err,
      );
      if (shared === true) return;
      // The hour's window closed while the counts were being made: once more in the next, with a fresh agent.
      if (Math.floor(Date.now() / HOUR) === began) throw shared;
    }
    throw new Error('the burst window closed twice');
  }, 600_000);
});
