import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Each test runs four to eight keyway processes one after another: minutes on a busy 2-core machine.
const SLOW = 240_000;
import { startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';

// Never fresh over history (issue 60). Before: with data/store.json removed, `keyway start` made a
// new empty store beside the key, the CA and the audit log, and `grants list` said "(none)"; with
// data/master.key removed, start wrote a new key and then failed to open the store, so the failed
// start changed the home. Now both stop with a code, say how to restore, and leave every byte.

/** Every file under `dir` with its mode and a hash of its bytes: what a failed start must not change. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    files[name] = st.isFile() ? `${st.mode.toString(8)} ${createHash('sha256').update(readFileSync(path)).digest('hex')}` : `${st.mode.toString(8)} dir`;
  }
  return files;
}

/** A home that has been used: a grant added (the key, the store, two audit lines and the head). */
async function usedHome(): Promise<{ home: string; env: Record<string, string> }> {
  const home = writeChildHome({});
  const env = cleanEnv({ KEYWAY_HOME: home });
  for (const name of ['github', 'slack']) {
    const add = await runCli(['grants', 'add', name, '--type', 'bearer', '--domains', `${name}.example.test`], env);
    expect(add.code, add.stderr).toBe(0);
  }
  expect(existsSync(join(home, 'data', 'master.key'))).toBe(true);
  expect(existsSync(join(home, 'data', 'audit-head.json'))).toBe(true);
  return { home, env };
}

async function failedStart(home: string, env: Record<string, string>, extra: string[] = []): Promise<{ code: number; stderr: string }> {
  const r = await runCli(['start', '--home', home, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...extra], env);
  return { code: r.code, stderr: r.stderr };
}

describe('a home with history', () => {
  it(
    'whose store file is gone does not start fresh: store_missing, the way to restore, and nothing written',
    async () => {
      const { home, env } = await usedHome();
      rmSync(join(home, 'data', 'store.json'));
      const before = snapshot(home);

      const start = await failedStart(home, env);
      expect(start.code).toBe(1);
      expect(start.stderr).toContain('store_missing');
      expect(start.stderr).toContain('Restore');
      expect(start.stderr).toContain('--fresh-store');
      expect(start.stderr).toContain(join(home, 'logs', 'audit.jsonl'));
      expect(snapshot(home)).toEqual(before);

      // The command line reads it the same way: not an empty list.
      const list = await runCli(['grants', 'list'], env);
      expect(list.code).toBe(1);
      expect(list.stderr).toContain('store_missing');
      expect(list.stdout).not.toContain('(none)');
      const add = await runCli(['grants', 'add', 'other', '--type', 'bearer', '--domains', 'other.example.test'], env);
      expect(add.code).toBe(1);
      // The evidence still reads: verify needs only the log and its key.
      const verify = await runCli(['audit', 'verify'], env);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      // doctor names it, with the way back.
      const doctor = await runCli(['doctor'], env);
      expect(doctor.stdout).toMatch(/^FAIL +store and master key: store_missing: .* -> restore data\/store\.json from a backup/m);
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  it(
    'whose audit log alone is left (store and key gone) still refuses, and makes no key',
    async () => {
      const { home, env } = await usedHome();
      rmSync(join(home, 'data'), { recursive: true });
      const before = snapshot(home);
      const start = await failedStart(home, env);
      expect(start.code).toBe(1);
      expect(start.stderr).toContain('store_missing');
      expect(snapshot(home)).toEqual(before);
      expect(existsSync(join(home, 'data'))).toBe(false);
    },
    SLOW,
  );

  it(
    'whose master key is gone beside its store: key_missing, no second key, nothing written, --fresh-store no way around it',
    async () => {
      const { home, env } = await usedHome();
      rmSync(join(home, 'data', 'master.key'));
      const before = snapshot(home);
      for (const extra of [[], ['--fresh-store']]) {
        const start = await failedStart(home, env, extra);
        expect(start.code, extra.join(' ')).toBe(1);
        expect(start.stderr).toContain('key_missing');
        expect(start.stderr).toContain('Restore the key file from a backup');
        expect(snapshot(home)).toEqual(before);
      }
      const list = await runCli(['grants', 'list'], env);
      expect(list.code).toBe(1);
      expect(list.stderr).toContain('key_missing');
    },
    SLOW,
  );

  it(
    'starts anew only with --fresh-store, which says so in the audit chain, and the chain still verifies',
    async () => {
      const { home, env } = await usedHome();
      rmSync(join(home, 'data', 'store.json'));
      const proxy = await startChildProxy({ home, env, startArgs: ['--fresh-store'] });
      try {
        expect(proxy.stdout() + proxy.stderr()).toContain('--fresh-store');
      } finally {
        expect(await proxy.stop()).toBe(0);
      }
      const lines = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const fresh = lines.filter((line) => line['action'] === 'store.fresh');
      expect(fresh).toHaveLength(1);
      expect(fresh[0]).toMatchObject({ decision: 'admin' });
      expect(String(fresh[0]?.['message'])).toContain(join(home, 'data', 'master.key'));
      const verify = await runCli(['audit', 'verify'], env);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      // And from now on it is a home like any other: a plain start works.
      const again = await startChildProxy({ home, env });
      expect(await again.stop()).toBe(0);
    },
    SLOW,
  );
});

describe('a store that is not a file', () => {
  it(
    'is damage said as such, not an unexpected error, and nothing is written',
    async () => {
      const { home, env } = await usedHome();
      const store = join(home, 'data', 'store.json');
      rmSync(store);
      mkdirSync(store);
      const before = snapshot(home);
      const list = await runCli(['grants', 'list'], env);
      expect(list.code).toBe(1);
      expect(list.stderr).toContain('is a folder, not a file; restore it from a backup');
      expect(list.stderr).not.toContain('unexpected error');
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );
});

describe('a new home', () => {
  it(
    'starts as before: key and store made together, even by two first starts at once',
    async () => {
      for (let round = 0; round < 3; round++) {
        const home = writeChildHome({});
        const env = cleanEnv({ KEYWAY_HOME: home });
        const [a, b] = await Promise.all([
          runCli(['grants', 'add', 'one', '--type', 'bearer', '--domains', 'one.example.test'], env),
          runCli(['grants', 'add', 'two', '--type', 'bearer', '--domains', 'two.example.test'], env),
        ]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        const list = await runCli(['grants', 'list', '--json'], env);
        expect(list.stdout).toContain('"one"');
        expect(list.stdout).toContain('"two"');
      }
    },
    SLOW,
  );
});
