// A change is never made without its audit line (issue 86). `keyway secrets set` killed between its
// store write and its audit line used to leave the new secret live with no `grants.set_secret` line,
// and `keyway audit verify` passed. Now the store write that makes the change carries the line,
// owed (credentials/store/change-rider.ts), and the next command that opens the audit log writes it.
//
// The kill is made to land in that window for real: the test watches the store file, and the moment
// the command's write lands it takes the audit log's lock (the command then waits for it, before its
// line) and kills the command with SIGKILL. A command that got its line in first (the race lost) is
// tried again, a bounded number of times; the test needs one kill inside the window.
//
// A line is also written once whatever instant the kill lands at (issue 86): the record names the
// id its line is written under, so a line written before a kill that left the record is found in the
// log by the next open, which drops the record and writes nothing. Those kills land at one exact file
// operation (helpers/kill-at.mjs): the store's rename that settles the record, or the one before.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/credentials/store/index.ts';
import { OWED_LINE_PREFIX } from '../../src/credentials/store/change-rider.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, cliCommand, makeHome, runCli } from '../helpers/keyway.ts';
import { runKilled } from '../helpers/run-killed.ts';

interface Line {
  action?: string;
  actor?: string;
  client?: string;
  changed?: string;
  grant?: string | null;
  message?: string;
  code?: string | null;
}

const linesOf = (home: string): Line[] => {
  const path = join(home, 'logs', 'audit.jsonl');
  return existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Line)
    : [];
};

const openStore = (home: string) =>
  Store.open(join(home, 'data', 'store.json'), Buffer.from(readFileSync(join(home, 'data', 'master.key'), 'utf8').trim(), 'base64'));

/**
 * Runs `keyway secrets set gh --stdin` and kills it right after its store write lands, holding the
 * audit log's lock so that its line cannot go first. Resolves whether the kill landed in the window.
 */
async function killAfterStoreWrite(home: string, env: Record<string, string>, secret: string): Promise<boolean> {
  const storePath = join(home, 'data', 'store.json');
  const lockDir = `${join(home, 'logs', 'audit.jsonl')}.lock`;
  const before = statSync(storePath).ino;
  const child = spawn(...cliCommand(['secrets', 'set', 'gh', '--stdin', '--home', home]), { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let locked = false;
  const watcher = watch(join(home, 'data'), () => {
    if (locked || !existsSync(storePath) || statSync(storePath).ino === before) return;
    try {
      // proper-lockfile's lock is this directory: the command's audit write now waits on it.
      mkdirSync(lockDir);
      locked = true;
      child.kill('SIGKILL');
    } catch {
      // The command holds the lock itself: it is writing its line (the race lost).
    }
  });
  child.stdin.end(`${secret}\n`);
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  watcher.close();
  if (locked) rmSync(lockDir, { recursive: true, force: true });
  expect(stderr, stderr).not.toContain(CANARY);
  if (!locked) expect(code, stderr).toBe(0);
  return locked;
}

describe('a change killed before its audit line has the line written at the next open', () => {
  it('secrets set: killed after the store write, the next command writes grants.set_secret once; audit verify passes', async () => {
    const home = makeHome();
    const env = cleanEnv({ KEYWAY_ACTOR: 'alice' });
    expect((await runCli(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--home', home], env)).code).toBe(0);
    let killedInWindow = 0;
    for (let attempt = 0; attempt < 6 && killedInWindow === 0; attempt++) {
      const before = linesOf(home).filter((l) => l.action === 'grants.set_secret').length;
      const killed = await killAfterStoreWrite(home, env, `${CANARY}-owed-${attempt}`);
      const after = linesOf(home).filter((l) => l.action === 'grants.set_secret').length;
      if (!killed) {
        expect(after).toBe(before + 1);
        continue;
      }
      killedInWindow++;
      // The window, as the kill left it: the secret is in the store, its line is not in the log, the store owes it.
      expect(after).toBe(before);
      const store = await openStore(home);
      const owed = store.entries<{ line: Line }>(OWED_LINE_PREFIX);
      expect(owed.map(([, r]) => r.line.action)).toEqual(['grants.set_secret']);
      expect(JSON.stringify(owed)).not.toContain(CANARY);
    }
    expect(killedInWindow, 'no kill landed between the store write and the audit line').toBe(1);

    // A command that only reads writes nothing; the next one that opens the audit log writes the owed line first.
    expect((await runCli(['grants', 'list', '--home', home], env)).code).toBe(0);
    expect((await runCli(['agents', 'add', 'bot', '--home', home], env)).code).toBe(0);
    const lines = linesOf(home);
    const late = lines.filter((l) => l.action === 'grants.set_secret' && l.message?.includes('written at the next open'));
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ actor: 'alice', client: 'cli', changed: 'secret', grant: 'gh', code: null });
    // Written before the command's own line, and once: a later open writes nothing more.
    expect(lines.indexOf(late[0]!)).toBeLessThan(lines.findIndex((l) => l.action === 'agents.create'));
    expect((await runCli(['agents', 'add', 'bot2', '--home', home], env)).code).toBe(0);
    expect(linesOf(home).filter((l) => l.message?.includes('written at the next open'))).toHaveLength(1);
    expect((await openStore(home)).entries(OWED_LINE_PREFIX)).toEqual([]);

    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')).not.toContain(CANARY);
  });

  it('a change that completes leaves nothing owed, and a refused one owes nothing', async () => {
    const home = makeHome();
    const env = cleanEnv();
    expect((await runCli(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--home', home], env)).code).toBe(0);
    expect((await runCli(['secrets', 'set', 'gh', '--stdin', '--home', home], env, `${CANARY}-whole\n`)).code).toBe(0);
    const refused = await runCli(['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test', '--home', home], env);
    expect(refused.code).not.toBe(0);
    expect((await openStore(home)).entries(OWED_LINE_PREFIX)).toEqual([]);
    expect(linesOf(home).map((l) => l.action)).toEqual(['grants.create', 'grants.set_secret', 'grants.create']);
    expect(linesOf(home).some((l) => l.message?.includes('written at the next open'))).toBe(false);
  });
});

describe('a change killed at an exact point has its line written once', () => {
  const env = cleanEnv({ KEYWAY_ACTOR: 'alice' });
  const outputs: string[] = [];
  /** The store's file replaced (its rename): the first is the change's write, then each later write (a settle, a claim). */
  const storeWrite = (when: 'before' | 'after', n: number) => `rename:${when}:${n}:/data/store\\.json$`;
  const count = (home: string, action: string) => linesOf(home).filter((l) => l.action === action).length;
  const late = (home: string) => linesOf(home).filter((l) => l.message?.includes('written at the next open'));
  const owed = async (home: string) => (await openStore(home)).entries<{ line: Line; ids?: string[] }>(OWED_LINE_PREFIX);
  const cli = async (home: string, args: string[], stdin?: string) => {
    const r = await runCli([...args, '--home', home], env, stdin);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
  };
  const killed = async (home: string, args: string[], killAt: string, stdin?: string) => {
    const r = await runKilled(home, args, env, killAt, stdin);
    outputs.push(r.stderr);
    expect(r.signal, r.stderr).toBe('SIGKILL');
  };
  const homeWithGrant = async () => {
    const home = makeHome();
    await cli(home, ['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test']);
    return home;
  };
  /** What each kill must leave at the end: the chain whole, no record owed, the secret never in the log. */
  const settled = async (home: string) => {
    expect(await owed(home)).toEqual([]);
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')).not.toContain(CANARY);
  };

  afterAll(() => {
    for (const text of outputs) expect(text).not.toContain(CANARY);
  });

  it('secrets set killed after its line, before its record is removed: the next command writes no second grants.set_secret', async () => {
    const home = await homeWithGrant();
    await killed(home, ['secrets', 'set', 'gh', '--stdin'], storeWrite('before', 2), `${CANARY}-after-line\n`);
    // As the kill left it: the change made, its line written under the id its record names, the record still owed.
    expect(count(home, 'grants.set_secret')).toBe(1);
    const left = await owed(home);
    expect(left.map(([, r]) => r.line.action)).toEqual(['grants.set_secret']);
    const line = linesOf(home).find((l) => l.action === 'grants.set_secret') as Line & { id: string };
    expect(left[0]![1].ids).toEqual([line.id]);

    // The next command that opens the log finds the line by that id and drops the record, writing nothing.
    await cli(home, ['agents', 'add', 'bot']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    expect(late(home)).toEqual([]);
    expect(count(home, 'agents.create')).toBe(1);
    await cli(home, ['agents', 'add', 'bot2']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    await settled(home);
  });

  it('secrets set killed after its store write, before its line: the next command writes it, exactly once', async () => {
    const home = await homeWithGrant();
    await killed(home, ['secrets', 'set', 'gh', '--stdin'], storeWrite('after', 1), `${CANARY}-before-line\n`);
    expect(count(home, 'grants.set_secret')).toBe(0);
    expect((await owed(home)).map(([, r]) => r.line.action)).toEqual(['grants.set_secret']);

    await cli(home, ['agents', 'add', 'bot']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    expect(late(home)).toHaveLength(1);
    expect(late(home)[0]).toMatchObject({ action: 'grants.set_secret', actor: 'alice', client: 'cli', changed: 'secret', grant: 'gh' });
    await cli(home, ['agents', 'add', 'bot2']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    await settled(home);
  });

  it('the next open killed after writing the owed line, before removing the record: the one after writes no second line', async () => {
    const home = await homeWithGrant();
    await killed(home, ['secrets', 'set', 'gh', '--stdin'], storeWrite('after', 1), `${CANARY}-twice-killed\n`);
    // The next command claims the record (a store write naming the id it will write under), writes the line, and is killed before removing it.
    await killed(home, ['agents', 'add', 'bot'], storeWrite('before', 2));
    expect(late(home)).toHaveLength(1);
    const left = await owed(home);
    expect(left).toHaveLength(1);
    expect(left[0]![1].ids).toHaveLength(2);
    expect(left[0]![1].ids![1]).toBe((late(home)[0] as Line & { id: string }).id);

    await cli(home, ['agents', 'add', 'bot']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    expect(late(home)).toHaveLength(1);
    await settled(home);
  });

  it('the next open killed after its claim, before the owed line: the one after writes it, once', async () => {
    const home = await homeWithGrant();
    await killed(home, ['secrets', 'set', 'gh', '--stdin'], storeWrite('after', 1), `${CANARY}-claim-killed\n`);
    await killed(home, ['agents', 'add', 'bot'], storeWrite('after', 1));
    expect(count(home, 'grants.set_secret')).toBe(0);
    expect((await owed(home))[0]![1].ids).toHaveLength(2);

    await cli(home, ['agents', 'add', 'bot']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    expect(late(home)).toHaveLength(1);
    await cli(home, ['agents', 'add', 'bot2']);
    expect(count(home, 'grants.set_secret')).toBe(1);
    await settled(home);
  });
});
