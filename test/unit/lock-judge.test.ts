// Which locks that record their holder are live (files/lock-judge.ts), each state as a kill or an
// older keyway leaves it on disk, then a real acquireFileLock: a stale one is cleared at once and
// said so; a live one is waited for and refused, and left exactly as it was.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireFileLock } from '../../src/files/file-lock.ts';
import { judgeLock } from '../../src/files/lock-judge.ts';
import type { LockHolder } from '../../src/files/lock-holder.ts';

const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
/** The parent (vitest's): a live process other than this one. */
const live: LockHolder = { host: hostname(), boot, pid: process.ppid, start: startOf(process.ppid), nonce: 'live' };
const dead = (): LockHolder => ({ ...live, pid: deadPid(), nonce: 'dead' });
const HOUR_AGO = new Date(Date.now() - 3_600_000);
const STALE_MS = 30_000;

const target = () => join(mkdtempSync(join(tmpdir(), 'keyway-judge-')), 'master-key');

/** Tries the lock as the key lock does; what it said it cleared. */
async function tryLock(path: string): Promise<{ got: boolean; cleared: string[] }> {
  const cleared: string[] = [];
  try {
    const release = await acquireFileLock(path, { staleMs: STALE_MS, waitMs: 100, recordHolder: true, onStaleCleared: (why) => cleared.push(why) });
    await release();
    return { got: true, cleared };
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ELOCKED');
    return { got: false, cleared };
  }
}

describe('a lock that records its holder: live or stale', () => {
  it('live: a holder alive on this host, however long since it was refreshed; refused, and left as it was', async () => {
    const path = target();
    writeFileSync(`${path}.lock`, JSON.stringify(live));
    utimesSync(`${path}.lock`, HOUR_AGO, HOUR_AGO);
    expect(await judgeLock(`${path}.lock`, STALE_MS)).toMatchObject({ stale: false });
    expect(await tryLock(path)).toEqual({ got: false, cleared: [] });
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(JSON.stringify(live));
  });

  it('a holder gone (killed, or its pid reused by a later process): cleared at once, naming its PID', async () => {
    for (const holder of [dead(), { ...live, start: '1' }]) {
      const path = target();
      writeFileSync(`${path}.lock`, JSON.stringify(holder));
      const { got, cleared } = await tryLock(path);
      expect(got).toBe(true);
      expect(cleared).toEqual([`from PID ${holder.pid}, which is no longer running`]);
      expect(existsSync(`${path}.lock`)).toBe(false);
    }
  });

  it('a holder on another host: live while refreshed within the stale time, stale after', async () => {
    const path = target();
    const elsewhere = { ...dead(), host: `${hostname()}-elsewhere` };
    writeFileSync(`${path}.lock`, JSON.stringify(elsewhere));
    expect(await tryLock(path)).toEqual({ got: false, cleared: [] });
    utimesSync(`${path}.lock`, HOUR_AGO, HOUR_AGO);
    const { got, cleared } = await tryLock(path);
    expect(got).toBe(true);
    expect(cleared).toEqual([expect.stringMatching(new RegExp(`^from PID ${elsewhere.pid} on .*-elsewhere, not refreshed for \\d+ s$`))]);
  });

  it("an older keyway's lock directory: its holder.json, or the file it was renaming in, judged the same", async () => {
    for (const name of ['holder.json', '.holder.json.0a1b2c3d']) {
      const path = target();
      mkdirSync(`${path}.lock`);
      writeFileSync(join(`${path}.lock`, name), JSON.stringify(live));
      expect(await tryLock(path)).toEqual({ got: false, cleared: [] });
      const gone = dead();
      writeFileSync(join(`${path}.lock`, name), JSON.stringify(gone));
      expect(await tryLock(path)).toEqual({ got: true, cleared: [`from PID ${gone.pid}, which is no longer running`] });
    }
  });

  it('a record half-written (its writer killed mid-write): stale once past the second a writer may take', async () => {
    const path = target();
    mkdirSync(`${path}.lock`);
    writeFileSync(join(`${path}.lock`, '.holder.json.0a1b2c3d'), `{"host":"${hostname()}","boot":"${boot}","pid":4242,"st`);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await tryLock(path)).toEqual({ got: true, cleared: ['from PID 4242, its holder record half-written'] });
  });

  it('a lock that records no holder (an empty directory): live while refreshed, stale after', async () => {
    const path = target();
    mkdirSync(`${path}.lock`);
    expect(await tryLock(path)).toEqual({ got: false, cleared: [] });
    utimesSync(`${path}.lock`, HOUR_AGO, HOUR_AGO);
    expect((await tryLock(path)).got).toBe(true);
  });

  it('what a holder killed while making its lock leaves (its record, not linked in) locks nothing and is swept; a live one is kept', async () => {
    const path = target();
    const dir = join(path, '..');
    const gone = dead();
    writeFileSync(join(dir, `.master-key.lock.${gone.pid}.0123456789ab.tmp`), JSON.stringify(gone));
    writeFileSync(join(dir, `.master-key.lock.${live.pid}.0123456789ac.tmp`), JSON.stringify(live));
    expect(await tryLock(path)).toEqual({ got: true, cleared: [] });
    expect(readdirSync(dir)).toEqual([`.master-key.lock.${live.pid}.0123456789ac.tmp`]);
  });

  it('the lock is a file holding its holder record, whole; given back, it is gone', async () => {
    const path = target();
    const release = await acquireFileLock(path, { staleMs: STALE_MS, waitMs: 100, recordHolder: true });
    expect(JSON.parse(readFileSync(`${path}.lock`, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname(), boot });
    expect(readdirSync(join(path, '..'))).toEqual(['master-key.lock']);
    await release();
    expect(readdirSync(join(path, '..'))).toEqual([]);
  });
});
