import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ListenerRegistry, listenersDir, registerListeners } from '../../src/egress/listener-registry.ts';

// The host-wide registry of keyway listeners (issue 21): what a reader believes, whatever another
// user of the host put in the directory. Planted entries may only add refusals; nothing planted
// may stall or crash the reader.

const freshDir = () => join(mkdtempSync(join(tmpdir(), 'keyway-registry-')), 'listeners');
/** A pid that is certainly gone: a child that has exited and been reaped. */
// A pid no process can have: above the kernel's pid_max. (The pid of a child that has exited can be
// handed to a new process before the test reads it, on a machine starting many: a flaky "dead" pid.)
let pidsAbove = 0;
const deadPid = () => Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) + 1_000 + ++pidsAbove;

describe('listener registry', () => {
  it('defaults to /tmp/keyway-listeners, KEYWAY_LISTENERS_DIR overriding it', () => {
    expect(listenersDir({})).toBe('/tmp/keyway-listeners');
    expect(listenersDir({ KEYWAY_LISTENERS_DIR: '/elsewhere' })).toBe('/elsewhere');
  });

  it('makes the directory sticky and writable by all, one file per process, removed on remove()', async () => {
    const dir = freshDir();
    const registration = await registerListeners(dir, [{ kind: 'proxy', host: '127.0.0.1', port: 40001 }]);
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^${process.pid}-[0-9a-f]{16}\\.json$`));
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40001)).toEqual({ kind: 'proxy', host: '127.0.0.1', port: 40001, pid: process.pid, trusted: true });
    registration.remove();
    registration.remove();
    expect(readdirSync(dir)).toEqual([]);
    expect(registry.listenerOn(40001)).toBeUndefined();
    registry.close();
  });

  it("another user's entry refuses its local address (listenerOn) but never a name before its lookup (mayListenOn)", () => {
    const dir = freshDir();
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    const file = join(dir, `${process.pid}-00000000000000aa.json`);
    writeFileSync(file, JSON.stringify({ pid: process.pid, listeners: [{ kind: 'admin', host: '127.0.0.1', port: 40443 }] }));
    chownSync(file, 65534, 65534);
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40443)).toMatchObject({ port: 40443, trusted: false });
    expect(registry.mayListenOn(40443)).toBe(false);
    registry.close();
    chownSync(file, process.getuid!(), process.getgid!());
    const again = new ListenerRegistry(dir);
    expect(again.mayListenOn(40443)).toBe(true);
    again.close();
  });

  it("ignores a dead process's entry, and reads a live one planted by anyone (it only adds a refusal)", () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(
      join(dir, `${deadPid()}-00000000000000aa.json`),
      JSON.stringify({ pid: deadPid(), listeners: [{ kind: 'proxy', host: '127.0.0.1', port: 40002 }] }),
    );
    writeFileSync(join(dir, '1-00000000000000bb.json'), JSON.stringify({ pid: 1, listeners: [{ kind: 'admin', host: '0.0.0.0', port: 40003 }] }));
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40002)).toBeUndefined();
    expect(registry.listenerOn(40003)).toMatchObject({ kind: 'admin', pid: 1 });
    registry.close();
  });

  it("prunes a dead process's entry when it reads the directory, and when a keyway registers", async () => {
    const dir = freshDir();
    mkdirSync(dir);
    /** Plants a dead process's entry; returns its file name. */
    const dead = (n: string, port: number): string => {
      const pid = deadPid();
      const name = `${pid}-${n}.json`;
      writeFileSync(join(dir, name), JSON.stringify({ pid, listeners: [{ kind: 'proxy', host: '127.0.0.1', port }] }));
      return name;
    };
    dead('00000000000000a1', 40030);
    writeFileSync(join(dir, '1-00000000000000b1.json'), JSON.stringify({ pid: 1, listeners: [{ kind: 'proxy', host: '127.0.0.1', port: 40031 }] }));
    writeFileSync(join(dir, '1-00000000000000b2.json'), '{not json');
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40030)).toBeUndefined();
    // Only the dead pid's entry went: a live one stays, and what is not an entry is not keyway's to judge.
    expect(readdirSync(dir).sort()).toEqual(['1-00000000000000b1.json', '1-00000000000000b2.json']);
    registry.close();

    const planted = dead('00000000000000a2', 40032);
    expect(readdirSync(dir)).toContain(planted);
    const registration = await registerListeners(dir, [{ kind: 'proxy', host: '127.0.0.1', port: 40033 }]);
    // The planted name exactly: this process's own entry has a random id, which may end in "a2" too.
    expect(readdirSync(dir)).not.toContain(planted);
    expect(readdirSync(dir).filter((n) => n.startsWith(`${process.pid}-`))).toHaveLength(1);
    registration.remove();
  });

  it('prunes the entry of a process killed after it was read, when its port is next asked about', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const file = join(dir, `${child.pid}-00000000000000c1.json`);
    writeFileSync(file, JSON.stringify({ pid: child.pid, listeners: [{ kind: 'admin', host: '127.0.0.1', port: 40040 }] }));
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40040)).toMatchObject({ pid: child.pid });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(registry.listenerOn(40040)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    registry.close();
  });

  it('is not stalled or fooled by a FIFO, a symlink, an oversized file, garbage or a wrong name', () => {
    const dir = freshDir();
    mkdirSync(dir);
    const entry = (port: number) => JSON.stringify({ pid: 1, listeners: [{ kind: 'proxy', host: '127.0.0.1', port }] });
    // A FIFO would block a plain read forever.
    expect(spawnSync('mkfifo', [join(dir, '1-0000000000000001.json')]).status).toBe(0);
    const target = join(dir, '..', 'elsewhere.json');
    writeFileSync(target, entry(40010));
    symlinkSync(target, join(dir, '1-0000000000000002.json'));
    writeFileSync(join(dir, '1-0000000000000003.json'), `${entry(40011)}${' '.repeat(5000)}`);
    writeFileSync(join(dir, '1-0000000000000004.json'), '{not json');
    writeFileSync(
      join(dir, '1-0000000000000005.json'),
      JSON.stringify({
        pid: 1,
        listeners: [
          { kind: 'proxy', host: '127.0.0.1', port: 70000 },
          { kind: 'x', port: 1 },
        ],
      }),
    );
    writeFileSync(join(dir, 'other.json'), entry(40012));
    writeFileSync(join(dir, '1-0000000000000006.json'), entry(40013));
    const registry = new ListenerRegistry(dir);
    for (const port of [40010, 40011, 40012, 70000, 1]) expect(registry.listenerOn(port), String(port)).toBeUndefined();
    expect(registry.listenerOn(40013)).toMatchObject({ port: 40013 });
    registry.close();
  });

  it('sees an entry added after the first read, and reads files only when the directory changed', async () => {
    const dir = freshDir();
    const registry = new ListenerRegistry(dir);
    expect(registry.listenerOn(40020)).toBeUndefined();
    const registration = await registerListeners(dir, [{ kind: 'proxy', host: '127.0.0.1', port: 40020 }]);
    expect(registry.listenerOn(40020)).toMatchObject({ pid: process.pid });
    // Let the directory's mtime age past the same-tick window, then spoil its one file in place (no
    // change to the directory's mtime; the watch event for it arrives only after these synchronous
    // calls): a reader that re-read files per call would lose the entry.
    await new Promise((r) => setTimeout(r, 300));
    registry.listenerOn(40020);
    const [name] = readdirSync(dir);
    writeFileSync(join(dir, name!), 'garbage');
    for (let i = 0; i < 3; i++) expect(registry.listenerOn(40020)).toMatchObject({ pid: process.pid });
    registration.remove();
    expect(registry.listenerOn(40020)).toBeUndefined();
    registry.close();
  });

  it('a writer refuses a directory it cannot trust: a symlink, or writable by all without the sticky bit', async () => {
    const base = mkdtempSync(join(tmpdir(), 'keyway-registry-'));
    const real = join(base, 'real');
    mkdirSync(real);
    symlinkSync(real, join(base, 'link'));
    await expect(registerListeners(join(base, 'link'), [])).rejects.toThrow('not a directory');
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(registerListeners(open, [])).rejects.toThrow('not sticky');
  });
});
