// `keyway store copy` and `keyway store migrate` (issue 11): a file store with every kind of record
// goes to PostgreSQL and back, every record equal after each leg; a non-empty target is refused and
// left alone; the URL is never printed with its password; the other key is refused as for a file.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

describe('keyway store copy / migrate', () => {
  let db: TestPostgres;
  const masterKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await startPostgres();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  function home(store?: Record<string, unknown>): { home: string; env: Record<string, string> } {
    const dir = makeHome();
    mkdirSync(join(dir, 'config'), { recursive: true });
    writeFileSync(join(dir, 'config', 'keyway.yaml'), stringify(store ? { store } : {}));
    return { home: dir, env: cleanEnv({ KEYWAY_HOME: dir, KEYWAY_MASTER_KEY: masterKey, KEYWAY_DATABASE_URL: db.url }) };
  }

  async function records(path: string): Promise<Array<[string, unknown]>> {
    const { key } = await loadMasterKey({ dataDir: '/nonexistent', env: { KEYWAY_MASTER_KEY: masterKey } });
    const store = await Store.open(path, key);
    try {
      return store.entries('');
    } finally {
      store.close();
    }
  }

  it('file -> postgres -> file: every record (grants, secrets, agents, leases) round-trips, verified', async () => {
    const source = home();
    const cli = (args: string[], stdin?: string) => runCli(args, source.env, stdin);
    expect((await cli(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin'], CANARY)).code).toBe(0);
    expect((await cli(['grants', 'add', 'oa', '--type', 'oauth2', '--domains', 'other.example.test'])).code).toBe(0);
    const oauthSecret = JSON.stringify({ clientId: 'c', clientSecret: `${CANARY}-cs`, refreshToken: `${CANARY}-rt` });
    expect((await cli(['secrets', 'set', 'oa', '--stdin'], oauthSecret)).code).toBe(0);
    expect((await cli(['agents', 'add', 'bot', '--grants', 'gh', '--lease-ttl', '1h'])).code).toBe(0);
    expect((await cli(['agents', 'lease', 'bot', 'gh', '--ttl', '30m'])).code).toBe(0);
    const original = await records(join(source.home, 'data', 'store.json'));
    expect(original.length).toBeGreaterThanOrEqual(4);

    const toDb = await cli(['store', 'copy', '--to', 'env:KEYWAY_DATABASE_URL']);
    expect(toDb.code, toDb.stderr).toBe(0);
    expect(toDb.stdout).toContain(`copied ${original.length} records to postgres://keyway@127.0.0.1:${db.port}/keyway`);
    expect(toDb.stdout + toDb.stderr).not.toContain('keyway-test-db-password');
    const dump = JSON.stringify((await db.query('SELECT * FROM keyway_records')).rows);
    expect(dump).not.toContain(CANARY);

    // A home whose config names the database reads what was copied.
    const replica = home({ backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' });
    const listed = await runCli(['grants', 'list', '--json'], replica.env);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((g) => g.id).sort()).toEqual(['gh', 'oa']);

    const backPath = join(makeHome(), 'back.json');
    const back = await runCli(['store', 'copy', '--to', backPath], replica.env);
    expect(back.code, back.stderr).toBe(0);
    expect(await records(backPath)).toEqual(original);
  });

  it('refuses a target that is not empty, and leaves it as it was', async () => {
    const other = home();
    expect((await runCli(['grants', 'add', 'x', '--type', 'bearer', '--domains', 'tunnel.example.test'], other.env)).code).toBe(0);
    const before = (await db.query('SELECT id, version FROM keyway_records ORDER BY id')).rows;
    const again = await runCli(['store', 'copy', '--to', 'env:KEYWAY_DATABASE_URL'], other.env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds \d+ records/);
    expect((await db.query('SELECT id, version FROM keyway_records ORDER BY id')).rows).toEqual(before);
  });

  it('the database with another master key: store_wrong_key, the same words as for a file', async () => {
    const wrong = home({ backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' });
    wrong.env['KEYWAY_MASTER_KEY'] = randomBytes(32).toString('base64');
    const listed = await runCli(['grants', 'list'], wrong.env);
    expect(listed.code).not.toBe(0);
    expect(listed.stderr).toMatch(/the master key does not open postgres:\/\/keyway@127\.0\.0\.1:\d+\/keyway; set KEYWAY_MASTER_KEY/);
  });

  it('keyway env on a home whose store is the database prints placeholders for the grants there', async () => {
    const onDb = home({ backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' });
    const added = await runCli(['grants', 'add', 'gh-db', '--type', 'bearer', '--domains', 'api.github.com'], onDb.env);
    expect(added.code, added.stderr).toBe(0);
    expect((await runCli(['init'], onDb.env)).code).toBe(0);
    const printed = await runCli(['env'], onDb.env);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/GITHUB_TOKEN=/);
    expect(printed.stderr).not.toContain('skipped');
  });

  it('migrate: says the schema is current; a file store has none', async () => {
    const onDb = home({ backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' });
    const migrated = await runCli(['store', 'migrate', '--json'], onDb.env);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ backend: 'postgres', applied: [], version: 4 });
    const onFile = await runCli(['store', 'migrate'], home().env);
    expect(onFile.code).toBe(0);
    expect(onFile.stdout).toContain('has no schema');
  });
});
