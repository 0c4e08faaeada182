// store.backend postgres over TLS: a server that accepts TCP logins over TLS only, and keyway's
// connection verifying it with the URL's sslmode=verify-full and sslrootcert (the test CA). Without
// TLS, or with a CA that did not sign the server's certificate, the start stops with
// store_unavailable, naming the database without its password.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

const STORE_CONFIG = { store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL', pool_size: 2 } };
const WRONG_CA = fileURLToPath(new URL('../fixtures/tls/untrusted.pem', import.meta.url));

describe('the PostgreSQL store over TLS', () => {
  let db: TestPostgres;
  const masterKey = randomBytes(32).toString('base64');
  const started: TestProxy[] = [];

  beforeAll(async () => {
    db = await startPostgres({ tls: true });
  });
  afterAll(async () => {
    for (const p of started) await p.stop();
    await db?.destroy();
  });

  const start = (url: string) => startProxy({ config: STORE_CONFIG, env: { KEYWAY_DATABASE_URL: url, KEYWAY_MASTER_KEY: masterKey } });

  it('connects with sslmode=verify-full and the CA that signed the server, and the session is encrypted', async () => {
    const proxy = await start(`${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(TLS_FIXTURES.caPath)}`);
    started.push(proxy);
    const { rows } = await db.query("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'keyway'");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.ssl === true)).toBe(true);
    // The pool stays within store.pool_size.
    expect(rows.length).toBeLessThanOrEqual(2);
  });

  it('refuses to start without TLS (the server takes none), naming the database without its password', async () => {
    const failure = await start(db.url).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'store_unavailable' });
    expect((failure as Error).message).toContain(`postgres://keyway@127.0.0.1:${db.port}/keyway`);
    expect((failure as Error).message).not.toContain('keyway-test-db-password');
  });

  it('refuses a server whose certificate the given CA did not sign', async () => {
    const failure = await start(`${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(WRONG_CA)}`).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'store_unavailable' });
    expect((failure as Error).message).toMatch(/certificate/i);
    expect((failure as Error).message).not.toContain('keyway-test-db-password');
  });
});
