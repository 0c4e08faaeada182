// A throwaway PostgreSQL cluster for one test file: initdb into a temp folder as the unprivileged
// `postgres` user (the server refuses to run as root), on a free loopback port, its socket in the
// temp folder. Never a system service. `.ci/run` installs Debian's postgresql when it is missing.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { TLS_FIXTURES } from './fixtures.ts';
import { freePort } from './ports.ts';

export interface TestPostgres {
  /** postgres://keyway:PASSWORD@127.0.0.1:PORT/keyway */
  url: string;
  port: number;
  /** Stops the server (fast shutdown); the data folder stays until destroy(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
  /** Stops it and removes the folder. */
  destroy(): Promise<void>;
  /** SQL as the superuser, for checks the tests make behind keyway's back. */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

const PASSWORD = 'keyway-test-db-password';

/** The folder of the newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin). */
export function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) throw new Error('PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it');
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL version under ${root}`);
  return join(root, versions[0] as string, 'bin');
}

function runAsPostgres(bin: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  const [command, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', join(bin, args[0] as string), ...args.slice(1)]]
    : [join(bin, args[0] as string), args.slice(1)];
  execFileSync(command as string, argv as string[], { stdio: 'pipe', timeout: 60_000 });
}

export interface PostgresOptions {
  /**
   * Serve TLS with the test fixtures' certificate (for 127.0.0.1, signed by the test CA), and accept
   * TCP logins over TLS only (pg_hba `hostssl`).
   */
  tls?: boolean;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'keyway-pg-'));
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    // The postgres user owns the cluster; its folder must be reachable by that user.
    chmodSync(dir, 0o755);
    execFileSync('install', ['-d', '-o', 'postgres', '-m', '700', data]);
    chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  }
  runAsPostgres(bin, ['initdb', '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const tlsArgs: string[] = [];
  if (options.tls) {
    // The server reads its key only if the postgres user owns it and nobody else can read it.
    writeFileSync(join(data, 'server.crt'), TLS_FIXTURES.cert);
    writeFileSync(join(data, 'server.key'), TLS_FIXTURES.key, { mode: 0o600 });
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', join(data, 'server.crt'), join(data, 'server.key')]);
    const hba = readFileSync(join(data, 'pg_hba.conf'), 'utf8').replace(/^host(\s)/gm, 'hostssl$1');
    writeFileSync(join(data, 'pg_hba.conf'), hba);
    tlsArgs.push('-c', 'ssl=on', '-c', 'ssl_cert_file=server.crt', '-c', 'ssl_key_file=server.key');
  }
  const port = await freePort();
  let server: ChildProcess | undefined;

  const start = async () => {
    const args = ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200', ...tlsArgs];
    const asRoot = process.getuid?.() === 0;
    server = asRoot
      ? spawn('runuser', ['-u', 'postgres', '--', join(bin, 'postgres'), ...args], { stdio: 'ignore' })
      : spawn(join(bin, 'postgres'), args, { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`PostgreSQL did not start on port ${port}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    // SIGINT to the postmaster itself (runuser does not pass it on): a fast shutdown that ends
    // every session. Its pid is the first line of postmaster.pid.
    const pidFile = join(data, 'postmaster.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : running.pid;
    if (pid) process.kill(pid, 'SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (running.exitCode === null) running.kill('SIGKILL');
  };
  const superuser = () => new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });

  await start();
  const setup = superuser();
  await setup.connect();
  await setup.query(`CREATE ROLE keyway LOGIN PASSWORD '${PASSWORD}'`);
  await setup.query('CREATE DATABASE keyway OWNER keyway');
  await setup.end();

  return {
    url: `postgres://keyway:${PASSWORD}@127.0.0.1:${port}/keyway`,
    port,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async query(sql, params) {
      const client = new pg.Client({ host: dir, port, user: 'postgres', database: 'keyway' });
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
  };
}
