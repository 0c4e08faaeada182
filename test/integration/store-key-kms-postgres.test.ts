// The master key of a PostgreSQL store, wrapped by AWS KMS and kept in the database, rotated while two
// replicas serve (issue 49). Real `keyway start` processes on a throwaway PostgreSQL cluster; the KMS
// is a double of its wire protocol that checks signatures (kms-double.ts). A real undici client sends
// requests through both replicas to an upstream that takes only the grant's token.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type KmsDouble, startKmsDouble } from '../helpers/kms-double.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const AWS_KEY = { accessKeyId: 'AKIAKEYWRAPPERPG01', secretAccessKey: `${CANARY}-kms-pg-caller-secret` };
const TOKEN = `${CANARY}-pg-kms-token`;
const TOKEN_AFTER = `${CANARY}-pg-kms-token-after`;

describe('a PostgreSQL store whose key a KMS wraps, rotated while two replicas serve', () => {
  let db: TestPostgres;
  let kms: KmsDouble;
  let upstream: TestUpstream;
  const accepted = new Set([TOKEN]);
  const replicas: Array<{ home: string; child: ChildProxy; agent: ProxyAgent }> = [];
  let env: Record<string, string>;
  const outputs: string[] = [];

  const cli = async (home: string, args: string[], stdin?: string) => {
    const r = await runCli([...args, '--home', home], env, stdin);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const get = async (i: number) => {
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: replicas[i]!.agent, signal: AbortSignal.timeout(slack(15_000)) });
    await res.body.text();
    return res.statusCode;
  };
  /** Both replicas inject what the upstream takes now (each re-reads the database within about a second). */
  const bothServe = async () => {
    for (let tries = 0; tries < 40; tries++) {
      if ((await get(0)) === 200 && (await get(1)) === 200) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  };
  /** The key as the KMS unwraps the database's row. */
  const databaseKey = async (): Promise<Buffer> => {
    const row = (await db.query(`SELECT key_id, ciphertext FROM keyway_master_key WHERE slot = 'current'`)).rows[0] as { ciphertext: string };
    const { KMSClient, DecryptCommand } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ region: 'us-east-1', endpoint: kms.url, credentials: AWS_KEY });
    return Buffer.from((await client.send(new DecryptCommand({ CiphertextBlob: Buffer.from(row.ciphertext, 'base64') }))).Plaintext!);
  };
  const keyInDatabase = async (key: Buffer): Promise<boolean> => {
    const dump = JSON.stringify([(await db.query('SELECT * FROM keyway_records')).rows, (await db.query('SELECT * FROM keyway_master_key')).rows]);
    return [key.toString('base64'), key.toString('base64url'), key.toString('hex')].some((form) => dump.includes(form));
  };

  beforeAll(async () => {
    db = await startPostgres();
    kms = await startKmsDouble([AWS_KEY]);
    kms.createKey('alias/keyway');
    upstream = await startUpstream({ authorize: async (a) => [...accepted].some((t) => a === `Bearer ${t}`) });
    env = cleanEnv({ KEYWAY_DATABASE_URL: db.url, AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey });
    for (let i = 0; i < 2; i++) {
      const home = writeChildHome({
        store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL', key: { kms: 'aws', key_id: 'alias/keyway', region: 'us-east-1', endpoint: kms.url } },
      });
      const child = await startChildProxy({ cli: DIST_CLI, home, env });
      const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
      replicas.push({ home, child, agent });
    }
  });

  afterAll(async () => {
    for (const r of replicas) {
      await r.agent.close();
      await r.child.stop();
    }
    await Promise.all([kms?.close(), upstream?.close()]);
    await db?.destroy();
    for (const text of [...outputs, ...replicas.flatMap((r) => [r.child.stdout(), r.child.stderr()])]) {
      for (const secret of [TOKEN, TOKEN_AFTER, AWS_KEY.secretAccessKey]) expect(findLeak(text, secret)).toBeUndefined();
    }
  });

  it('the replicas share one KMS-made key, kept wrapped in the database; no key on disk or in the database in clear', async () => {
    expect((await db.query('SELECT count(*)::int AS n FROM keyway_master_key')).rows[0]).toEqual({ n: 1 });
    expect(kms.count('GenerateDataKey')).toBe(1);
    expect(await keyInDatabase(await databaseKey())).toBe(false);
    const status = JSON.parse((await cli(replicas[1]!.home, ['key', 'status', '--json'])).stdout) as { kept: string; where: string };
    expect(status).toMatchObject({ kept: 'kms', where: expect.stringContaining('keyway_master_key') });
    expect((await cli(replicas[0]!.home, ['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test'])).code).toBe(0);
    expect((await cli(replicas[0]!.home, ['secrets', 'set', 'api', '--stdin'], TOKEN)).code).toBe(0);
    expect(await bothServe()).toBe(true);
  });

  it('keyway key rotate: every record sealed again and the key replaced in one transaction, both replicas serving throughout and following', async () => {
    const keyBefore = await databaseKey();
    const publicKey = (await cli(replicas[0]!.home, ['audit', 'public-key'])).stdout;
    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      for (let i = 0; i < 400 && !stop; i++) statuses.push(await get(i % 2));
    })();
    const rotated = await cli(replicas[0]!.home, ['key', 'rotate', '--json']);
    await new Promise((r) => setTimeout(r, 1_500));
    stop = true;
    await load;
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const keyAfter = await databaseKey();
    expect(keyAfter.equals(keyBefore)).toBe(false);
    expect(await keyInDatabase(keyAfter)).toBe(false);
    // The other replica's home: its command line reads the new key from the database, and its
    // secret (sealed under that key) is what both replicas send next.
    accepted.add(TOKEN_AFTER);
    accepted.delete(TOKEN);
    const set = await cli(replicas[1]!.home, ['secrets', 'set', 'api', '--stdin'], TOKEN_AFTER);
    expect(set.code, set.stderr).toBe(0);
    expect(await bothServe()).toBe(true);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN_AFTER}`);
    expect((await cli(replicas[1]!.home, ['audit', 'public-key'])).stdout).toBe(publicKey);
    // keyway env reads the database's grants with the key the database keeps (it makes none).
    const printed = await cli(replicas[1]!.home, ['env']);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stderr).not.toMatch(/placeholders for grants in the store skipped/);
  });
});
