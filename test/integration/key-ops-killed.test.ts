// Key commands killed at exact points (issue 86), the real CLI driven as a user runs it, and killed
// with SIGKILL by a preload (helpers/kill-at.mjs) at one file operation: where a `kill -9` at that
// instant lands. Then the next commands, as a user would run them:
// - a `key rewrap` or `key rotate` killed after its audit line and before its owed note is removed:
//   the next command removes the note and writes nothing (one line in the audit, counted), at once;
//   killed after its line's id was recorded and before the line: the next command writes it, once;
// - a `key rotate` killed while making its lock (the holder record written, not yet linked in), just
//   after, or while giving the lock back: the next rotate runs, saying which stale lock it cleared;
//   the state an older keyway left (a lock directory, its holder file not yet renamed in) likewise;
// and each time `keyway audit verify` passes, the store opens with its grant, and the next rotate runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { runKilled } from '../helpers/run-killed.ts';
import { type KmsDouble, startKmsDouble } from '../helpers/kms-double.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const AWS_KEY = { accessKeyId: 'AKIAKEYKILLED00001', secretAccessKey: `${CANARY}-killed-kms-caller-secret` };
const GRANT_SECRET = `${CANARY}-killed-grant-secret`;

const countOf = (home: string, action: string): number => {
  const path = join(home, 'logs', 'audit.jsonl');
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && (JSON.parse(l) as { action?: string }).action === action).length;
};
const plainKey = (home: string) => readFileSync(join(home, 'data', 'master.key'), 'utf8').trim();
const owedDir = (home: string) => join(home, 'data', 'key-lines-owed');
const locksDir = (home: string) => join(home, 'data', 'locks');

describe('key commands killed at exact points', () => {
  let kms: KmsDouble;
  const outputs: string[] = [];
  const plainEnv = cleanEnv();
  const kmsEnv = cleanEnv({ AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey });
  const run = async (home: string, args: string[], env: Record<string, string>) => {
    const r = await runCli([...args, '--home', home], env);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const killed = async (home: string, args: string[], env: Record<string, string>, killAt: string) => {
    const r = await runKilled(home, args, env, killAt);
    outputs.push(r.stderr);
    expect(r.signal, r.stderr).toBe('SIGKILL');
    return r;
  };
  /** A home with one grant and its secret, the key in data/master.key; `kms`: store.key then names the KMS. */
  const homeWithGrant = async (env: Record<string, string>, withKms: boolean): Promise<string> => {
    const home = makeHome();
    expect((await run(home, ['grants', 'add', 'gh', '--type', 'bearer', '--domains', 'api.example.test'], env)).code).toBe(0);
    expect((await runCli(['secrets', 'set', 'gh', '--stdin', '--home', home], env, `${GRANT_SECRET}\n`)).code).toBe(0);
    if (withKms) {
      mkdirSync(join(home, 'config'), { recursive: true });
      writeFileSync(
        join(home, 'config', 'keyway.yaml'),
        stringify({ store: { key: { kms: 'aws', key_id: 'alias/keyway', region: 'us-east-1', endpoint: kms.url } } }),
      );
    }
    return home;
  };
  /** What every kill must leave: the audit chain whole, the store opening with its grant, and a rotation that runs. */
  const intact = async (home: string, env: Record<string, string>) => {
    const listed = await run(home, ['grants', 'list', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"gh"');
    const rotations = countOf(home, 'key.rotate');
    const rotated = await run(home, ['key', 'rotate'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).not.toMatch(/stale/);
    expect(countOf(home, 'key.rotate')).toBe(rotations + 1);
    const verify = await run(home, ['audit', 'verify'], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  };

  beforeAll(async () => {
    kms = await startKmsDouble([AWS_KEY]);
    kms.createKey('alias/keyway');
  });

  afterAll(async () => {
    await kms?.close();
    for (const text of outputs) for (const secret of [AWS_KEY.secretAccessKey, GRANT_SECRET]) expect(findLeak(text, secret)).toBeUndefined();
  });

  describe('an owed key line is written once', () => {
    it('a rewrap killed after its key.rewrap line, before removing its note: the next command removes the note, writes nothing', async () => {
      const home = await homeWithGrant(kmsEnv, true);
      await killed(home, ['key', 'rewrap'], kmsEnv, 'unlink:before:1:key-lines-owed/key\\.rewrap-[0-9a-f]+\\.json\\.claimed-');
      // As the kill left it: the line written, the note still claimed.
      expect(countOf(home, 'key.rewrap')).toBe(1);
      expect(readdirSync(owedDir(home)).some((n) => n.includes('.claimed-'))).toBe(true);
      // The next command, at once (not a minute later), finishes the note without a second line.
      const status = await run(home, ['key', 'status', '--json'], kmsEnv);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ kept: 'kms' });
      expect(countOf(home, 'key.rewrap')).toBe(1);
      expect(existsSync(owedDir(home))).toBe(false);
      expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
      await intact(home, kmsEnv);
      expect(countOf(home, 'key.rewrap')).toBe(1);
    });

    it('a rewrap killed after recording its line id, before the line: the next command writes the line, once', async () => {
      const home = await homeWithGrant(kmsEnv, true);
      // The claim (1), moved to a fresh name (2), its record with the id in place (3): then the kill.
      await killed(home, ['key', 'rewrap'], kmsEnv, 'rename:after:3:key-lines-owed/key\\.rewrap-[0-9a-f]+\\.json\\.claimed-');
      expect(countOf(home, 'key.rewrap')).toBe(0);
      expect((await run(home, ['grants', 'list'], kmsEnv)).code).toBe(0);
      expect(countOf(home, 'key.rewrap')).toBe(1);
      expect(existsSync(owedDir(home))).toBe(false);
      await intact(home, kmsEnv);
      expect(countOf(home, 'key.rewrap')).toBe(1);
    });

    it('a rotate killed after its key.rotate line, before removing its note: the next command writes no second line', async () => {
      const home = await homeWithGrant(plainEnv, false);
      const before = plainKey(home);
      await killed(home, ['key', 'rotate'], plainEnv, 'unlink:before:1:key-lines-owed/key\\.rotate-[0-9a-f]+\\.json\\.claimed-');
      expect(plainKey(home)).not.toBe(before);
      expect(countOf(home, 'key.rotate')).toBe(1);
      expect((await run(home, ['grants', 'list'], plainEnv)).code).toBe(0);
      expect(countOf(home, 'key.rotate')).toBe(1);
      expect(existsSync(owedDir(home))).toBe(false);
      await intact(home, plainEnv);
      expect(countOf(home, 'key.rotate')).toBe(2);
    });
  });

  describe('the key lock recovers from every kill point', () => {
    it('killed with its holder record written, before linking it in as the lock: the next rotate runs', async () => {
      const home = await homeWithGrant(plainEnv, false);
      const before = plainKey(home);
      await killed(home, ['key', 'rotate'], plainEnv, 'link:before:1:locks/master-key\\.lock$');
      expect(existsSync(join(locksDir(home), 'master-key.lock'))).toBe(false);
      expect(readdirSync(locksDir(home)).filter((n) => n.endsWith('.tmp'))).toHaveLength(1);
      expect(plainKey(home)).toBe(before);
      await intact(home, plainEnv);
      // The record the killed one left locks nothing, and went with the next holder.
      expect(readdirSync(locksDir(home))).toEqual([]);
      expect(countOf(home, 'key.rotate')).toBe(1);
    });

    it('killed just after its lock was linked in: the next rotate clears it, saying from which PID, and runs', async () => {
      const home = await homeWithGrant(plainEnv, false);
      const before = plainKey(home);
      const { pid } = await killed(home, ['key', 'rotate'], plainEnv, 'link:after:1:locks/master-key\\.lock$');
      expect(JSON.parse(readFileSync(join(locksDir(home), 'master-key.lock'), 'utf8'))).toMatchObject({ pid });
      const next = await run(home, ['key', 'rotate'], plainEnv);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(new RegExp(`^keyway: cleared a stale key lock \\(.*master-key\\.lock\\) from PID ${pid}, which is no longer running$`, 'm'));
      expect(plainKey(home)).not.toBe(before);
      expect(readdirSync(locksDir(home))).toEqual([]);
      await intact(home, plainEnv);
      expect(countOf(home, 'key.rotate')).toBe(2);
    });

    it('killed while giving its lock back after the rotation: the lock is cleared and the rotation line written, once', async () => {
      const home = await homeWithGrant(plainEnv, false);
      const before = plainKey(home);
      const { pid } = await killed(home, ['key', 'rotate'], plainEnv, 'unlink:before:1:locks/master-key\\.lock$');
      // The rotation was made; its line is owed, the lock left.
      expect(plainKey(home)).not.toBe(before);
      expect(countOf(home, 'key.rotate')).toBe(0);
      const next = await run(home, ['key', 'rotate'], plainEnv);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toContain(`from PID ${pid}, which is no longer running`);
      expect(countOf(home, 'key.rotate')).toBe(2);
      await intact(home, plainEnv);
      expect(countOf(home, 'key.rotate')).toBe(3);
    });

    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    it.each([
      ['written whole', JSON.stringify({ host: hostname(), boot, pid: dead, start: '1', nonce: 'a' })],
      ['half-written (killed while writing it)', `{"host":${JSON.stringify(hostname())},"boot":"${boot}","pid":${dead},"st`],
    ])('as an older keyway left it (a lock directory, its holder file %s, not renamed in): cleared, the next rotate runs', async (_how, temp) => {
      const home = await homeWithGrant(plainEnv, false);
      const lock = join(locksDir(home), 'master-key.lock');
      mkdirSync(lock, { recursive: true });
      writeFileSync(join(lock, '.holder.json.0a1b2c3d'), temp, { mode: 0o600 });
      // Left a while ago (a half-written one is presumed being written for its first second).
      const then = new Date(Date.now() - 5_000);
      utimesSync(lock, then, then);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const next = await run(home, ['key', 'rotate'], plainEnv);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(new RegExp(`^keyway: cleared a stale key lock .* from PID ${dead}`, 'm'));
      expect(existsSync(lock)).toBe(false);
      await intact(home, plainEnv);
    });
  });
});
