// A change is never made without its audit line (issue 86). `keyway secrets set` killed between its
// store write and its audit line used to leave the new secret live with no `grants.set_secret` line,
// and `keyway audit verify` passed. Now the store write that makes the change carries the line,
// owed (credentials/store/change-rider.ts), and the next command that opens the audit log writes it.
//
// The kill is made to land in that window for real: the test watches the store file, and the moment
// the command's write lands it takes the audit log's lock (the command then waits for it, before its
// line) and kills the command with SIGKILL. A command that got its line in first (the race lost) is
// tried again, a bounded number of times; the test needs one kill inside the window.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/credentials/store/index.ts';
import { OWED_LINE_PREFIX } from '../../src/credentials/store/change-rider.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { CLI, cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';

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
  const child = spawn(process.execPath, [CLI, 'secrets', 'set', 'gh', '--stdin', '--home', home], { env, stdio: ['pipe', 'ignore', 'pipe'] });
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
