// Every keyway on this host, whatever its home or user, refuses the listeners of every other
// keyway as a destination: with loopback in proxy.allow_networks, an agent could otherwise CONNECT
// to another keyway's proxy (and use its grants as that keyway's anonymous local agent) or to its
// admin API. Each process announces its listeners in one small file of a shared directory; each
// reads the directory when it changes (fs.watch, with a stat of its mtime as the fallback), never
// per request, and never probes a destination to ask whether it is a keyway (that would send traffic).
//
// Many users, one directory: /tmp/keyway-listeners, sticky and writable by all like /tmp, so every
// user's keyway can announce itself and no user can remove or replace another's file (the sticky
// bit; file names carry a random part, so none can be taken in advance either). A file anyone
// plants can only add refusals, the safe direction, and another user's only of local addresses. The directory's owner could delete others'
// files, so a writer uses it only if root or itself owns it; otherwise it warns and goes on (a local
// user able to do that could as well relay a loopback port to the same listener).

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  watch,
  type FSWatcher,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaceFile } from '../files/atomic-write.ts';
import { isAlive } from '../running-proxy.ts';

export interface KeywayListener {
  kind: 'proxy' | 'admin';
  host: string;
  port: number;
}

export interface RegisteredListener extends KeywayListener {
  pid: number;
  /** The entry's file belongs to root or to this process's user (see mayListenOn). */
  trusted: boolean;
}

/** KEYWAY_LISTENERS_DIR (tests isolate themselves with it), else the one directory of this host. */
export function listenersDir(env: NodeJS.ProcessEnv): string {
  const set = env['KEYWAY_LISTENERS_DIR'];
  if (set !== undefined && set !== '') return set;
  // Windows' temporary folder is per user; /tmp is the one every user shares elsewhere.
  return process.platform === 'win32' ? join(tmpdir(), 'keyway-listeners') : '/tmp/keyway-listeners';
}

const ENTRY_NAME = /^\d+-[0-9a-f]{16}\.json$/;
const MAX_ENTRY_BYTES = 4096;
const MAX_ENTRIES = 1024;
const MAX_LISTENERS_PER_ENTRY = 16;

/** Makes the directory (sticky, writable by all) if missing; throws saying why it cannot be trusted. */
function prepareDir(dir: string): void {
  try {
    mkdirSync(dir);
    // umask narrowed mkdir's mode: set it whole.
    chmodSync(dir, 0o1777);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid === undefined) return;
  if (st.uid !== 0 && st.uid !== uid) throw new Error(`${dir} belongs to another user (uid ${st.uid})`);
  if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) throw new Error(`${dir} is writable by all but not sticky`);
}

export interface Registration {
  /** Removes this process's entry; safe to call more than once. */
  remove(): void;
}

/**
 * Announces this process's listeners; the entry is removed at stop. A process killed before its
 * stop leaves its entry: ignored, and pruned by the next keyway that writes or reads the directory.
 */
export async function registerListeners(dir: string, listeners: KeywayListener[]): Promise<Registration> {
  prepareDir(dir);
  const file = join(dir, `${process.pid}-${randomBytes(8).toString('hex')}.json`);
  await replaceFile(file, `${JSON.stringify({ pid: process.pid, listeners })}\n`, 0o644);
  readEntries(dir); // prunes the entries of processes that are gone
  let removed = false;
  return {
    remove() {
      if (removed) return;
      removed = true;
      rmSync(file, { force: true });
    },
  };
}

/** How often, without a watch event, the directory's mtime is looked at again (a stat, no reads). */
const RECHECK_MS = 1_000;
/** An mtime this recent may hide a second change in the same clock tick: read again next time. */
const SAME_TICK_MS = 100;

/** What every keyway on this host has announced, re-read only when the directory changes. */
export class ListenerRegistry {
  readonly #dir: string;
  #byPort = new Map<number, RegisteredListener[]>();
  #stamp = '';
  #checkedAt = 0;
  #dirty = true;
  #watcher: FSWatcher | undefined;

  constructor(dir: string) {
    this.#dir = dir;
    try {
      prepareDir(dir);
    } catch {
      // Unusable for writing; still read it if it exists (its entries only add refusals).
    }
    try {
      this.#watcher = watch(dir, { persistent: false }, () => {
        this.#dirty = true;
      });
      this.#watcher.on('error', () => this.#stopWatching());
    } catch {
      // No watch (a missing directory, a filesystem without one): the mtime recheck remains.
    }
  }

  /**
   * Cheap: whether some keyway announced a listener on this port, as last read (a change is seen
   * at the next watch event, or within RECHECK_MS). For the decision that must be made before a
   * name is resolved.
   */
  mayListenOn(port: number): boolean {
    this.#refresh(false);
    // Only entries of root or this user: the refusal this feeds comes before any lookup, for every
    // name on the port, so one file another local user plants (port 443, a live pid) would refuse
    // every HTTPS name on the host. Other users' entries still refuse a local address (listenerOn).
    return this.#byPort.get(port)?.some((l) => l.trusted) ?? false;
  }

  /** Up to date (one stat): a live keyway's listener on this port, if any. For a local destination. */
  listenerOn(port: number): RegisteredListener | undefined {
    this.#refresh(true);
    const listeners = this.#byPort.get(port);
    // A process gone since the last read (killed: its entry stayed): read again, which prunes it.
    if (listeners?.some((l) => !isAlive(l.pid))) {
      this.#dirty = true;
      this.#refresh(true);
    }
    return this.#byPort.get(port)?.find((l) => isAlive(l.pid));
  }

  close(): void {
    this.#stopWatching();
  }

  #stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #refresh(fresh: boolean): void {
    const now = Date.now();
    if (!fresh && !this.#dirty && now - this.#checkedAt < RECHECK_MS) return;
    this.#checkedAt = now;
    let stamp = '';
    let mtimeMs = 0;
    try {
      const st = statSync(this.#dir, { bigint: true });
      stamp = `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
      mtimeMs = Number(st.mtimeMs);
    } catch {
      // missing: no entries
    }
    if (stamp === this.#stamp && !this.#dirty) return;
    this.#dirty = false;
    this.#byPort = stamp === '' ? new Map() : readEntries(this.#dir);
    this.#stamp = now - mtimeMs < SAME_TICK_MS ? '' : stamp;
  }
}

/**
 * Every live process's listeners. The entry of a process that is gone is removed on the way (a
 * keyway killed before its stop): one this process may not remove (another user's, in the sticky
 * directory) is only skipped, as before.
 */
function readEntries(dir: string): Map<number, RegisteredListener[]> {
  const byPort = new Map<number, RegisteredListener[]>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => ENTRY_NAME.test(n));
  } catch {
    return byPort;
  }
  const uid = process.getuid?.();
  for (const name of names.slice(0, MAX_ENTRIES)) {
    const path = join(dir, name);
    const file = readSmallFile(path);
    const entry = parseEntry(file?.text);
    if (!file || !entry) continue;
    if (!isAlive(entry.pid)) {
      prune(path);
      continue;
    }
    const trusted = uid === undefined || file.uid === 0 || file.uid === uid;
    for (const l of entry.listeners) {
      const listener = { ...l, pid: entry.pid, trusted };
      const list = byPort.get(l.port);
      if (list) list.push(listener);
      else byPort.set(l.port, [listener]);
    }
  }
  return byPort;
}

function prune(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // another user's entry (sticky directory), or gone already: it stays ignored
  }
}

/**
 * A regular file of at most MAX_ENTRY_BYTES, or undefined. Anyone may put anything here: a FIFO
 * (opened non-blocking, then refused by fstat) or a symlink (not followed) must not stall the reader.
 */
function readSmallFile(path: string): { text: string; uid: number } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES) return undefined;
    const buffer = Buffer.alloc(st.size);
    const read = readSync(fd, buffer, 0, st.size, 0);
    return { text: buffer.toString('utf8', 0, read), uid: st.uid };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function parseEntry(text: string | undefined): { pid: number; listeners: KeywayListener[] } | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { pid, listeners } = (parsed ?? {}) as { pid?: unknown; listeners?: unknown };
  if (!Number.isInteger(pid) || (pid as number) <= 0 || !Array.isArray(listeners)) return undefined;
  const valid = listeners.slice(0, MAX_LISTENERS_PER_ENTRY).filter(isListener);
  return { pid: pid as number, listeners: valid };
}

function isListener(value: unknown): value is KeywayListener {
  const l = value as Partial<KeywayListener> | null;
  return (
    typeof l === 'object' &&
    l !== null &&
    (l.kind === 'proxy' || l.kind === 'admin') &&
    typeof l.host === 'string' &&
    Number.isInteger(l.port) &&
    (l.port as number) > 0 &&
    (l.port as number) < 65536
  );
}
