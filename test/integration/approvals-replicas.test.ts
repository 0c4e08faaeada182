// Approvals across keyway processes (issue 26): two `keyway start` replicas on one PostgreSQL store.
// A request held at one replica is listed and answered at the other's home (the CLI writes the
// store), and the holding replica lets it go through the store's change feed. Held requests survive
// nothing: a replica killed while holding one leaves its record pending only until it starts again,
// which writes it as interrupted (and audits it); a replica stopped gracefully refuses what it holds
// with approval_expired, saying so.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SECRET = `${CANARY}-replicas`;

interface Listed {
  id: string;
  state: string;
  path: string;
  ended_because?: string;
}

describe('approvals across replicas on PostgreSQL', () => {
  let db: TestPostgres;
  let upstream: TestUpstream;
  const masterKey = randomBytes(32).toString('base64');
  const homes: Array<{ home: string; env: Record<string, string> }> = [];
  const running = new Map<number, { child: ChildProxy; agent: ProxyAgent }>();
  const outputs: string[] = [];

  function newHome(): { home: string; env: Record<string, string> } {
    const home = writeChildHome({
      store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' },
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_SECRET' } },
      agents: {
        bot: {
          key: 'env:BOT_KEY',
          grants: ['api'],
          rules: [{ grant: 'api', methods: ['POST'], paths: ['/repos/**'], approve: 'human', approval: { wait: '60s' } }],
        },
      },
    });
    // The test's own listener registry: the replica killed below leaves its entry there, not in the machine's.
    const registry = process.env['KEYWAY_LISTENERS_DIR'];
    return {
      home,
      env: cleanEnv({
        KEYWAY_MASTER_KEY: masterKey,
        KEYWAY_DATABASE_URL: db.url,
        API_SECRET: SECRET,
        BOT_KEY: 'bot-key',
        ...(registry ? { KEYWAY_LISTENERS_DIR: registry } : {}),
      }),
    };
  }

  async function start(i: number): Promise<{ child: ChildProxy; agent: ProxyAgent }> {
    const { home, env } = homes[i]!;
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    const agent = new ProxyAgent({
      uri: `http://bot:bot-key@127.0.0.1:${child.port}`,
      requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') },
    });
    const replica = { child, agent };
    running.set(i, replica);
    return replica;
  }

  async function stop(i: number): Promise<number | null> {
    const replica = running.get(i)!;
    running.delete(i);
    // The process first: closing the agent waits for its requests, and one may be held.
    const code = await replica.child.stop();
    await replica.agent.close().catch(() => undefined);
    outputs.push(replica.child.stdout(), replica.child.stderr());
    return code;
  }

  async function cli(i: number, args: string[]) {
    const r = await runCli([...args, '--home', homes[i]!.home], homes[i]!.env);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  async function listed(i: number): Promise<Listed[]> {
    const r = await cli(i, ['approvals', 'list', '--all', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { approvals: Listed[] }).approvals;
  }

  async function until<T>(find: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = await find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  function post(agent: ProxyAgent, path: string) {
    return request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agent,
      method: 'POST',
      body: '{"x":1}',
      headers: { 'content-type': 'application/json' },
    }).then(
      async (res) => ({ status: res.statusCode, code: res.headers['x-keyway-error'], text: await res.body.text() }),
      (err: Error) => ({ status: 0, code: undefined, text: err.message }),
    );
  }

  beforeAll(async () => {
    db = await startPostgres();
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (req, res) => {
        if (!req.url?.startsWith('/repos/')) return false;
        res.end('{"ok":true}');
        return true;
      },
    });
    homes.push(newHome(), newHome());
    await start(0);
    await start(1);
  });

  afterAll(async () => {
    const codes = await Promise.all([...running.keys()].map((i) => stop(i)));
    for (const home of homes) outputs.push(readFileSync(join(home.home, 'logs', 'audit.jsonl'), 'utf8'));
    for (const text of outputs) expect(findLeak(text, SECRET), 'the canary in an output').toBeUndefined();
    expect(codes.every((c) => c === 0)).toBe(true);
    await upstream?.close();
    await db?.destroy();
  });

  it("an approval given at one replica's home releases the request held at the other", async () => {
    const held = post(running.get(1)!.agent, '/repos/acme/merges');
    // Listed from replica 0's home: the record is in the shared store.
    const asked = await until(async () => (await listed(0)).find((a) => a.path === '/repos/acme/merges' && a.state === 'pending'), 'the pending approval');
    const answer = await cli(0, ['approvals', 'approve', asked.id]);
    expect(answer.code, answer.stderr).toBe(0);
    const r = await held;
    expect(r.status, r.text).toBe(200);
    expect(upstream.seen.filter((s) => s.url === '/repos/acme/merges')).toHaveLength(1);
    // The request's line is written when its response closes, a moment after the client has it.
    const line = await until(
      async () =>
        readFileSync(join(homes[1]!.home, 'logs', 'audit.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l['decision'] === 'inject' && l['path'] === '/repos/acme/merges'),
      'the request line',
    );
    expect(line['approval']).toMatchObject({ id: asked.id, outcome: 'once' });
  });

  it('a replica killed while holding a request writes it as interrupted when it starts again', async () => {
    const held = post(running.get(1)!.agent, '/repos/killed/merges');
    const asked = await until(async () => (await listed(0)).find((a) => a.path === '/repos/killed/merges' && a.state === 'pending'), 'the pending approval');
    const { child, agent } = running.get(1)!;
    running.delete(1);
    child.child.kill('SIGKILL');
    const r = await held;
    expect(r.status).toBe(0); // the connection went with the process: no answer at all
    await agent.close().catch(() => undefined);
    // Until it starts again the record is pending (its deadline is a minute away); an answer now
    // would reach no one, and after the restart none is taken.
    await start(1);
    const after = await until(async () => (await listed(0)).find((a) => a.id === asked.id && a.state === 'interrupted'), 'the interrupted record');
    expect(after.ended_because).toContain('stopped');
    const late = await cli(0, ['approvals', 'approve', asked.id]);
    expect(late.code).not.toBe(0);
    expect(late.stderr).toContain('interrupted');
    const verify = await cli(1, ['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(readFileSync(join(homes[1]!.home, 'logs', 'audit.jsonl'), 'utf8')).toContain(`"id":"${asked.id}","outcome":"interrupted"`);
    expect(upstream.seen.filter((s) => s.url === '/repos/killed/merges')).toHaveLength(0);
  });

  it('a replica stopped gracefully refuses what it holds with approval_expired, saying why', async () => {
    const held = post(running.get(1)!.agent, '/repos/stopping/merges');
    const asked = await until(async () => (await listed(0)).find((a) => a.path === '/repos/stopping/merges' && a.state === 'pending'), 'the pending approval');
    const code = await stop(1);
    expect(code).toBe(0);
    const r = await held;
    expect(r.status).toBe(403);
    expect(r.code).toBe('approval_expired');
    expect(r.text).toContain('keyway stopped');
    expect((await listed(0)).find((a) => a.id === asked.id)?.state).toBe('interrupted');
  });
});
