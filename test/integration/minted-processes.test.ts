// Minted tokens across keyway processes: `keyway start` run as its own process, twice on one home
// (the file store and its lock files) and twice on one PostgreSQL store (homes that share nothing
// but the database), each facing a github_app grant with no token yet. One mint in total, and
// every process's requests carry its token.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { type GitHubDouble, startGitHubDouble } from '../helpers/github-double.ts';
import { cleanEnv } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

const APP = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PEM = APP.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('github_app tokens across keyway processes', () => {
  let github: GitHubDouble;
  const work = mkdtempSync(join(tmpdir(), 'keyway-minted-'));
  const children: ChildProxy[] = [];
  const agents: ProxyAgent[] = [];
  const codes: Array<number | null> = [];
  const stopped = new Set<ChildProxy>();
  /** Stops the processes still running (the PostgreSQL ones before their database goes), keeping their exit codes. */
  async function stopChildren() {
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    const running = children.filter((c) => !stopped.has(c));
    for (const c of running) stopped.add(c);
    codes.push(...(await Promise.all(running.map((c) => c.stop()))));
  }

  beforeAll(async () => {
    github = await startGitHubDouble({
      appId: '777',
      publicKey: APP.publicKey,
      installations: [9],
      apiHost: 'api.example.test',
      gitHost: 'other.example.test',
      gitRoot: work,
      now: Date.now,
    });
  });
  afterAll(async () => {
    await stopChildren();
    for (const c of children) for (const secret of [PEM.split('\n')[1]!, ...github.tokens]) expect(findLeak(c.stdout() + c.stderr(), secret)).toBeUndefined();
    expect(codes.every((c) => c === 0)).toBe(true);
    await github?.close();
    rmSync(work, { recursive: true, force: true });
  });

  function writeHome(extra: Record<string, unknown> = {}): string {
    return writeChildHome({
      grants: { gh: { type: 'github_app', domains: ['api.example.test'], secret: 'env:GH_APP', api_url: `https://api.example.test:${github.port}` } },
      ...extra,
    });
  }

  async function start(home: string, env: Record<string, string>): Promise<ProxyAgent> {
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    children.push(child);
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
    agents.push(agent);
    return agent;
  }

  /** 20 requests through each process at once, each mint held 800 ms: one mint in total, all pass with its token. */
  async function onceAcross(through: ProxyAgent[]) {
    const before = github.mints.length;
    github.setDelay(800);
    const answers = await Promise.all(
      through.flatMap((agent) =>
        Array.from({ length: 20 }, async () => {
          const res = await request(`https://api.example.test:${github.port}/repos/acme/widgets`, { dispatcher: agent, headersTimeout: 30_000 });
          await res.body.text();
          return res.statusCode;
        }),
      ),
    );
    github.setDelay(0);
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    expect(github.mints.length - before).toBe(1);
  }

  it('two processes on one home: one mint', async () => {
    const home = writeHome();
    const env = cleanEnv({
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      GH_APP: JSON.stringify({ appId: '777', privateKey: PEM, installationId: '9' }),
    });
    await onceAcross([await start(home, env), await start(home, env)]);
  });

  it('a token the API refused (401) in one process is not sent by the other once the new one is minted (issue 60)', async () => {
    const home = writeHome();
    const env = cleanEnv({
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      GH_APP: JSON.stringify({ appId: '777', privateKey: PEM, installationId: '9' }),
    });
    const [a, b] = [await start(home, env), await start(home, env)];
    const get = async (agent: ProxyAgent) => {
      const res = await request(`https://api.example.test:${github.port}/repos/acme/widgets`, { dispatcher: agent, headersTimeout: 30_000 });
      await res.body.text();
      return res.statusCode;
    };
    expect(await get(a)).toBe(200);
    expect(await get(b)).toBe(200);
    github.revokeNewest();
    const refused = github.refused.length;
    const mints = github.mints.length;
    // a: 401, a new token minted, replayed. b, as soon as a has its answer: the new token.
    expect(await get(a)).toBe(200);
    expect(await get(b)).toBe(200);
    expect(github.mints.length - mints).toBe(1);
    expect(github.refused.slice(refused)).toEqual(['api: revoked']);
  });

  describe('replicas on one PostgreSQL store', () => {
    let db: TestPostgres;
    beforeAll(async () => {
      db = await startPostgres();
    });
    afterAll(async () => {
      await stopChildren();
      await db?.destroy();
    });

    it('two replicas: one mint (the store holds the token, its lock the mint)', async () => {
      const env = cleanEnv({
        KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
        GH_APP: JSON.stringify({ appId: '777', privateKey: PEM, installationId: '9' }),
        KEYWAY_DATABASE_URL: db.url,
      });
      const replicas = [];
      for (let i = 0; i < 2; i++) replicas.push(await start(writeHome({ store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } }), env));
      await onceAcross(replicas);
    });
  });
});
