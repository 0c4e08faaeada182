// Who holds a lock (files/lock-holder.ts), and when a waiter may take it over at once: only a holder
// certainly gone (same host and boot, no such process, or the pid reused by a later one). Anything
// in doubt is presumed alive (the stale timer decides then), and a lock held by a live process is
// never taken over.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { acquireFileLock } from '../../src/files/file-lock.ts';
import { holderGone, type LockHolder, parseHolder, readHolderText } from '../../src/files/lock-holder.ts';

const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};
/** A pid that was a process and is none now. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('a lock holder', () => {
  const me: LockHolder = { host: hostname(), boot, pid: process.pid, start: startOf(process.pid), nonce: 'n' };

  it('alive: this process, or a live one started when its record says', () => {
    expect(holderGone(me)).toBe(false);
    expect(holderGone({ ...me, pid: process.ppid, start: startOf(process.ppid) })).toBe(false);
  });

  it('gone: no process of that pid, or one started at another time (reused), or a boot since', () => {
    expect(holderGone({ ...me, pid: deadPid() })).toBe(true);
    expect(holderGone({ ...me, pid: process.ppid, start: '1' })).toBe(true);
    expect(holderGone({ ...me, boot: '00000000-0000-0000-0000-000000000000' })).toBe(true);
  });

  it('in doubt, alive: another host, or a record without a boot id', () => {
    expect(holderGone({ ...me, pid: deadPid(), host: `${hostname()}-elsewhere` })).toBe(false);
    expect(holderGone({ ...me, pid: deadPid(), boot: '' })).toBe(false);
    expect(parseHolder('{"host":"h","boot":"b","pid":-1,"start":""}')).toBeUndefined();
    expect(parseHolder('not json')).toBeUndefined();
  });

  it('recordHolder: the lock says who holds it, and a live holder is waited for, then refused', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'keyway-holder-')), 'key');
    const release = await acquireFileLock(path, { staleMs: 30_000, waitMs: 100, recordHolder: true });
    expect(parseHolder(await readHolderText(`${path}.lock`))).toMatchObject({ pid: process.pid, host: hostname(), boot });
    await expect(acquireFileLock(path, { staleMs: 30_000, waitMs: 100, recordHolder: true })).rejects.toMatchObject({ code: 'ELOCKED' });
    await release();
    const again = await acquireFileLock(path, { staleMs: 30_000, waitMs: 100, recordHolder: true });
    await again();
  });

  it('recordHolder: a lock whose holder was killed is taken over on the first try, long before it goes stale', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'keyway-holder-')), 'store.json');
    const module = fileURLToPath(new URL('../../src/files/file-lock.ts', import.meta.url));
    const script = `const { acquireFileLock } = await import(${JSON.stringify(module)});
await acquireFileLock(${JSON.stringify(path)}, { staleMs: 30000, waitMs: 100, recordHolder: true });
process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      child.once('exit', (code) => reject(new Error(`the holder exited (${code})`)));
    });
    // Alive: waited for, then refused, as any held lock.
    await expect(acquireFileLock(path, { staleMs: 30_000, waitMs: 100, recordHolder: true })).rejects.toMatchObject({ code: 'ELOCKED' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // Gone: its lock is taken over though it is nowhere near stale (30 s) and the wait is 100 ms.
    const release = await acquireFileLock(path, { staleMs: 30_000, waitMs: 100, recordHolder: true });
    expect(parseHolder(await readHolderText(`${path}.lock`))).toMatchObject({ pid: process.pid });
    await release();
  });

  it('recordHolder: the holder file does not read as the lock taken over; the lock is refreshed and stays held', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'keyway-holder-')), 'key');
    const lost: Error[] = [];
    // proper-lockfile refreshes every staleMs / 2 (1 s here), checking the mtime is still its own.
    const release = await acquireFileLock(path, { staleMs: 2_000, waitMs: 100, recordHolder: true, onCompromised: (err) => lost.push(err) });
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(lost).toEqual([]);
    await expect(acquireFileLock(path, { staleMs: 2_000, waitMs: 100, recordHolder: true })).rejects.toMatchObject({ code: 'ELOCKED' });
    await release();
  });
});
