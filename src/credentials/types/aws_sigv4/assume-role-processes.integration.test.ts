// assume_role across keyway processes: `keyway start` run as its own process, twice on one home
// (the file store and its lock files) and three times on one PostgreSQL store (homes that share
// nothing but the database, whose advisory lock is the refresh lock), each facing a grant with no
// role credentials yet. One AssumeRole in total, every process signs with its answer, and the
// temporary credentials are kept sealed in the store, not in the clear.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsRoleState, awsRoleStateId } from './role-state.ts';
import { loadMasterKey, Store } from '../../store/index.ts';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../../../../test/helpers/child-proxy.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { startPostgres, type TestPostgres } from '../../../../test/helpers/postgres.ts';
import { type S3Front, startS3Front } from '../../../../test/helpers/s3-front.ts';
import { type StsDouble, startStsDouble } from '../../../../test/helpers/sts-double.ts';
import { AWS_TEST_HOSTS } from '../../../../test/helpers/test-leaf.ts';

const LONG_TERM = { accessKeyId: 'AKIAKEYWAYROLE000002', secretAccessKey: `${CANARY}-long-term/kw+5e1b7c3a0d9f` };
const ROLE = 'arn:aws:iam::123456789012:role/keyway-shared';
const BUCKET = 'shared';

describe('assume_role across keyway processes on one home', () => {
  let sts: StsDouble;
  let front: S3Front;
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
    sts = await startStsDouble({ keys: [LONG_TERM] });
    front = await startS3Front({ keys: () => sts.issued, buckets: [BUCKET], region: 'us-east-1' });
  });

  afterAll(async () => {
    await stopChildren();
    const secrets = [LONG_TERM.secretAccessKey, ...sts.issued.flatMap((c) => [c.secretAccessKey, c.sessionToken])];
    for (const c of children) {
      for (const secret of secrets) expect(findLeak(c.stdout() + c.stderr(), secret), "a secret in keyway's output").toBeUndefined();
    }
    expect(codes.every((c) => c === 0)).toBe(true);
    await Promise.all([front?.close(), sts?.close()]);
  });

  /** A home whose config has the role grant (and `extra`: a store backend). */
  function writeHome(extra: Record<string, unknown> = {}): string {
    return writeChildHome(
      {
        grants: {
          role: {
            type: 'aws_sigv4',
            domains: ['s3.us-east-1.amazonaws.com'],
            secret: 'env:AWS_LONG_TERM',
            assume_role: { role_arn: ROLE, duration: '1h' },
            sts_endpoint: sts.url,
          },
        },
        ...extra,
      },
      AWS_TEST_HOSTS,
    );
  }

  async function start(home: string, env: Record<string, string>): Promise<ProxyAgent> {
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    children.push(child);
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
    agents.push(agent);
    return agent;
  }

  /**
   * 20 requests through each agent at once, each AssumeRole held 800 ms (so the other processes'
   * requests arrive while it is in flight and wait on the grant's lock, rather than find the answer
   * already in the store): all succeed, one AssumeRole, every request signed with its answer.
   */
  async function onceAcross(agents: ProxyAgent[], tag: string) {
    const calls = sts.calls.length;
    sts.setDelay(800);
    const send = async (agent: ProxyAgent, i: number) => {
      const res = await request(`https://s3.us-east-1.amazonaws.com:${front.port}/${BUCKET}?list-type=2&${tag}=${i}`, {
        dispatcher: agent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      return { status: res.statusCode, text: await res.body.text() };
    };
    const results = await Promise.all(agents.flatMap((agent, n) => Array.from({ length: 20 }, (_, i) => send(agent, n * 100 + i))));
    sts.setDelay(0);
    expect(
      results.filter((r) => r.status !== 200),
      results.find((r) => r.status !== 200)?.text,
    ).toEqual([]);
    expect(sts.calls.length - calls).toBe(1);
    const issued = sts.issued.at(-1)!;
    const seen = front.seen.filter((r) => r.url.includes(`&${tag}=`));
    expect(seen).toHaveLength(20 * agents.length);
    expect(seen.every((r) => r.refused === undefined && r.securityToken && r.accessKeyId === issued.accessKeyId)).toBe(true);
    return issued;
  }

  it('two processes on one home, 20 requests each, no role credentials yet: one AssumeRole in total, both sign with it', async () => {
    const home = writeHome();
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), AWS_LONG_TERM: JSON.stringify(LONG_TERM) });
    const issued = await onceAcross([await start(home, env), await start(home, env)], 'home');

    // Kept in the store, sealed: readable with the master key, nowhere in the file as written.
    const { key } = await loadMasterKey({ dataDir: join(home, 'data'), env: { KEYWAY_MASTER_KEY: env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(home, 'data', 'store.json'), key);
    try {
      expect(store.get<AwsRoleState>(awsRoleStateId('role'))).toMatchObject({
        roleArn: ROLE,
        sourceKeyId: LONG_TERM.accessKeyId,
        accessKeyId: issued.accessKeyId,
        sessionToken: issued.sessionToken,
      });
    } finally {
      store.close();
    }
    const onDisk = readFileSync(join(home, 'data', 'store.json'), 'utf8');
    for (const secret of [issued.secretAccessKey, issued.sessionToken]) expect(findLeak(onDisk, secret)).toBeUndefined();
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

    it('three replicas, 20 requests each: one AssumeRole in total (the advisory lock), all sign with it', async () => {
      const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), AWS_LONG_TERM: JSON.stringify(LONG_TERM), KEYWAY_DATABASE_URL: db.url });
      const replicas: ProxyAgent[] = [];
      for (let i = 0; i < 3; i++) replicas.push(await start(writeHome({ store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } }), env));
      await onceAcross(replicas, 'pg');
    });
  });
});
