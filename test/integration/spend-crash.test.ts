// Spend survives a crash (issue 85): `keyway start` processes killed with SIGKILL under metered
// traffic, then started again on the same home. The stand-in vendor counts what it billed, the
// clients count the answers they received whole; afterwards `keyway spend --json` and the budget's
// standing hold every answer a client received, and nothing more than the vendor billed:
//
//   received ≤ counted ≤ billed
//
// (the difference billed − received is the requests in flight at a kill: the vendor answered, the
// client never got the answer's end; keyway counts such an answer whole when its count was journaled
// before the kill, and not at all otherwise). Every count is a whole answer (100 in, 50 out), so the
// tokens and dollars follow the count exactly. A clean restart counts nothing twice. Without the
// spend journal (spend/ledger/journal.ts) the last flush window was lost: a third of the answers.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { CRASH_USAGE, expectCounted, meteredTraffic, readSpend, receivedAtLeast } from '../helpers/metered-traffic.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';

const KEY = `${CANARY}-crash-key`;
const AGENT_KEY = 'crash-agent-key-0123456789';

/** The pids of `primary`'s worker processes (proxy.workers), from /proc. */
function workerPids(primary: number): number[] {
  const text = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(/\s+/).map(Number);
}

describe('spend after SIGKILL', () => {
  let standin: StandinServer;
  const billed = () => standin.seen.filter((s) => s.path === '/v1/messages').length;
  const outputs: string[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { usage: CRASH_USAGE } })] });
  });
  afterAll(async () => {
    await standin?.close();
    // The vendor's key appears in no output of any keyway that ran.
    expect(findLeak(outputs.join('\n'), KEY)).toBeUndefined();
  });

  function home(workers: number | undefined): { home: string; env: Record<string, string> } {
    const dir = writeChildHome(
      {
        grants: { anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } } },
        agents: { bot: { key: 'env:AGENT_KEY' } },
        // Far from reached: they are here to be counted, as `keyway spend` shows them.
        budgets: [
          { agent: 'bot', limit: { usd: 1_000 }, per: 'day' },
          { agent: 'bot', limit: { tokens: 100_000_000 }, per: 'day' },
        ],
      },
      ['api.anthropic.com'],
    );
    if (workers !== undefined) {
      const path = join(dir, 'config', 'keyway.yaml');
      const config = parse(readFileSync(path, 'utf8')) as { proxy: Record<string, unknown> };
      config.proxy['workers'] = workers;
      writeFileSync(path, stringify(config));
    }
    return { home: dir, env: cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), MODEL_KEY: KEY, AGENT_KEY }) };
  }

  async function start(where: { home: string; env: Record<string, string> }): Promise<ChildProxy> {
    return startChildProxy({ cli: SRC_CLI, home: where.home, env: where.env });
  }

  function traffic(child: ChildProxy, where: { home: string }) {
    return meteredTraffic({
      proxyUrl: `http://bot:${AGENT_KEY}@127.0.0.1:${child.port}`,
      ca: readFileSync(join(where.home, 'certs', 'ca.pem'), 'utf8'),
      vendorPort: standin.port,
      loops: 4,
      perLoop: 400,
    });
  }

  /**
   * Started again after the last kill: its window is counted before traffic (and said so); stopped,
   * `keyway spend` holds every answer received; then a clean stop and start count nothing twice.
   */
  async function countedOnceAfterRestarts(where: { home: string; env: Record<string, string> }, received: number, billedSince: number): Promise<void> {
    const again = await start(where);
    expect(again.stdout()).toContain('was counted from the spend journal');
    await again.stop();
    outputs.push(again.stdout(), again.stderr());
    const after = await readSpend(where.home, where.env);
    expectCounted(after, received, billedSince);
    const clean = await start(where);
    expect(clean.stdout(), 'a clean stop left nothing to count again').not.toContain('counted from the spend journal');
    await clean.stop();
    outputs.push(clean.stdout(), clean.stderr());
    expect((await readSpend(where.home, where.env)).totals).toEqual(after.totals);
  }

  async function killed(child: ChildProxy): Promise<void> {
    const exited = new Promise((resolve) => child.child.once('exit', resolve));
    child.child.kill('SIGKILL');
    await exited;
    outputs.push(child.stdout(), child.stderr());
  }

  it('the single process, killed twice mid-traffic: every answer a client received is counted, once', async () => {
    const where = home(undefined);
    const billedBefore = billed();
    let received = 0;
    for (let kill = 0; kill < 2; kill++) {
      const child = await start(where);
      if (kill > 0) expect(child.stdout(), 'the restart counts what the kill left out').toContain('was counted from the spend journal');
      const load = traffic(child, where);
      // Killed mid-traffic: after some answers, at a different point each time.
      await receivedAtLeast(load, 25 + kill * 20);
      await killed(child);
      load.stop();
      await load.done;
      received += load.received();
    }
    await countedOnceAfterRestarts(where, received, billed() - billedBefore);
  });

  it('proxy.workers 2: a worker killed mid-traffic, then the primary: every answer a client received is counted, once', async () => {
    const where = home(2);
    const billedBefore = billed();
    let received = 0;
    const child = await start(where);
    try {
      const load = traffic(child, where);
      await receivedAtLeast(load, 40);
      // One worker killed: its clients' requests fail; the other worker's go on.
      const [worker] = workerPids(child.child.pid!);
      expect(worker).toBeDefined();
      process.kill(worker!, 'SIGKILL');
      await receivedAtLeast(load, load.received() + 20);
      // Then the primary (its workers go with it).
      await killed(child);
      load.stop();
      await load.done;
      received += load.received();
    } finally {
      if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    }
    await countedOnceAfterRestarts(where, received, billed() - billedBefore);
  });
});
