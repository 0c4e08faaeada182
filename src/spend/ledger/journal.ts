// The spend ledger's journal (issue 85): every metered answer's count, appended to a file in the
// data directory before the answer's end is given to the agent, so that a crash (SIGKILL, out of
// memory; a power cut is another matter: see below) loses no count a client received. The ledger
// adds counts to the store only every FLUSH_MS (ledger.ts): without this, a kill lost the last
// window's counts, a third of them under steady traffic.
//
// Why a journal of its own rather than the audit log: an answer's audit line is written when the
// exchange closes, after the agent has the answer's end, and in batches; a kill between the two
// leaves an answer the client has with no line to rebuild it from. This file is appended to
// synchronously (one write(2) per answer, no fsync: the page cache survives the process, as the
// audit log's lines do) at the moment the ledger counts the answer, and the answer's end waits for it.
//
// Which lines are in the store's counts: each flush writes, in the same store update as the counts,
// the record `spend-journal:<id>` = {seq} of the last line it includes (every line up to it was
// counted in memory before the flush took its batch). Lines after it are not in the store.
//
// One journal per process: several keyways may run on one home at once (`keyway fetch`, a contained
// `keyway run`, beside `keyway start`), each with its own ledger. Each makes its own folder,
// spend-journal/<id>/, with holder.json saying which process writes it (files/lock-holder.ts). At
// start, a process adopts every folder whose writer is certainly gone (a killed keyway's): it claims
// the folder by renaming it (one rename wins when two start at once), counts the lines after the
// folder's mark again (spend records and budgets both), and once a flush has put them in the store
// (with the folder's mark, in the same update), deletes the folder. A journal of a live process is
// never read by another, so nothing is counted twice; a clean stop flushes and deletes its own.
// Replicas on one PostgreSQL store each have their own data directory, so their own journals.
//
// What it admits when read back: lines `{"s":seq,...}` whose entry has the ledger's shape, in
// rising seq; any other line (a torn last line of a killed process, anything written by something
// else) is skipped and said so. In a folder: holder.json, id, and <first seq>.jsonl files; a file
// past ROTATE_BYTES is followed by a new one at the next flush, and a file whose every line a flush
// has put in the store is deleted.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { acquireFileLock } from '../../files/file-lock.ts';
import { holderGone, holderPath, parseHolder, thisHolder } from '../../files/lock-holder.ts';
import type { SpendEntry } from '../core/ledger.ts';
import type { UsageReading } from '../core/usage.ts';

/** The store record that says up to which line a journal's counts are in the store. */
export const JOURNAL_MARK_PREFIX = 'spend-journal:';
/** A file past this is followed by a new one at the next flush, so that flushed lines can be deleted. */
const ROTATE_BYTES = 1 << 20;
const FILE = /^(\d{1,16})\.jsonl$/;
const ID = /^[0-9a-f]{32}$/;
const ROOT = 'spend-journal';
/** Adoption is brief (reading killed processes' files); a starter killed holding the lock is taken over at once (recordHolder). */
const ADOPT_LOCK = { staleMs: 10_000, waitMs: 15_000, recordHolder: true } as const;

export interface JournalMark {
  readonly seq: number;
}

export const journalMarkId = (id: string): string => `${JOURNAL_MARK_PREFIX}${id}`;

interface JournalFile {
  readonly name: string;
  /** The last seq written to it (0: none). */
  last: number;
}

/** One line as written: short keys, the entry's time in epoch ms. */
interface Line {
  s: number;
  a: string | null;
  g: string;
  u: string | null;
  t: number;
  r: UsageReading;
  c: number | null;
  /** A delegated agent's ancestors, root first (only on such an agent's lines): its parents' budgets count it again after a crash too. */
  p?: string[];
}

interface Found {
  readonly seq: number;
  readonly entry: SpendEntry;
}

/** A killed process's journal, claimed by this one at start: its lines past its mark are counted again, then the folder is deleted. */
export interface AdoptedJournal {
  readonly id: string;
  /** Every line read, in rising seq. */
  readonly lines: readonly Found[];
  readonly lastSeq: number;
  /** Lines that were not the journal's shape (a torn last line, mostly). */
  readonly skipped: number;
  /** Deletes the folder: once a flush put its lines (and its mark) in the store. */
  remove(): void;
}

/** This process's own journal: made at start, appended to per answer, deleted at a clean stop. */
export class SpendJournal {
  readonly #dir: string;
  /** This journal's id: its store mark is `spend-journal:<id>`. */
  readonly id: string;
  readonly #files: JournalFile[] = [];
  #fd: number | undefined;
  #bytes = 0;
  #seq = 0;

  private constructor(dir: string, id: string) {
    this.#dir = dir;
    this.id = id;
  }

  /**
   * A new journal of this process's own in `dataDir`: its folder made under a temporary name with
   * its id and holder, then renamed, so that it appears whole (another process adopting never sees
   * a folder without a holder).
   */
  static create(dataDir: string): SpendJournal {
    const root = join(dataDir, ROOT);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const id = randomBytes(16).toString('hex');
    const temp = join(root, `.new-${id}`);
    mkdirSync(temp, { mode: 0o700 });
    writeFileSync(join(temp, 'id'), `${id}\n`, { mode: 0o600 });
    writeFileSync(holderPath(temp), JSON.stringify(thisHolder()), { mode: 0o600 });
    renameSync(temp, join(root, id));
    return new SpendJournal(join(root, id), id);
  }

  /**
   * Claims every journal in `dataDir` whose writer is certainly gone (lock-holder.ts holderGone: a
   * process of this host and boot that no longer runs), under a lock so that two starts never claim
   * the same one: each is marked as this process's (its holder rewritten) and read whole.
   */
  static async adopt(dataDir: string): Promise<AdoptedJournal[]> {
    const root = join(dataDir, ROOT);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const release = await acquireFileLock(join(root, 'adopt'), ADOPT_LOCK);
    try {
      const adopted: AdoptedJournal[] = [];
      for (const name of readdirSync(root)) {
        if (!ID.test(name) && !name.startsWith('adopted-')) continue;
        const dir = join(root, name);
        let holderText: string | undefined;
        let id: string;
        try {
          holderText = readFileSync(holderPath(dir), 'utf8');
          id = readFileSync(join(dir, 'id'), 'utf8').trim();
        } catch {
          continue; // not a journal folder
        }
        const holder = parseHolder(holderText);
        if (holder === undefined || !ID.test(id) || !holderGone(holder)) continue;
        // This process's now: a start after a kill of this one adopts it again, and nobody else meanwhile.
        writeFileSync(join(dir, '.holder'), JSON.stringify(thisHolder()), { mode: 0o600 });
        renameSync(join(dir, '.holder'), holderPath(dir));
        const { lines, skipped } = readLines(dir);
        adopted.push({
          id,
          lines,
          lastSeq: lines.at(-1)?.seq ?? 0,
          skipped,
          remove: () => rmSync(dir, { recursive: true, force: true }),
        });
      }
      return adopted;
    } finally {
      await release();
    }
  }

  /** The store record id of this journal's mark. */
  get markId(): string {
    return journalMarkId(this.id);
  }

  /** The last seq appended: a flush's mark. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Appends one entry (one write(2)); returns its seq. Throws when the file cannot be written. */
  append(entry: SpendEntry): number {
    const seq = this.#seq + 1;
    const line: Line = { s: seq, a: entry.agent, g: entry.grant, u: entry.end_user, t: entry.at.getTime(), r: entry.reading, c: entry.cost_usd };
    if (entry.ancestors !== undefined && entry.ancestors.length > 0) line.p = [...entry.ancestors];
    const text = `${JSON.stringify(line)}\n`;
    const fd = this.#fd ?? this.#openFile(seq);
    writeSync(fd, text);
    this.#bytes += Buffer.byteLength(text);
    this.#seq = seq;
    this.#files.at(-1)!.last = seq;
    return seq;
  }

  /** At a flush's start: past ROTATE_BYTES, the next line goes to a new file (this one can then be deleted once flushed). */
  rotateIfLarge(): void {
    if (this.#fd === undefined || this.#bytes < ROTATE_BYTES) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** A flush put every line up to `mark` in the store: files wholly at or before it are deleted (never the one written to). */
  retire(mark: number): void {
    const open = this.#fd === undefined ? undefined : this.#files.at(-1);
    for (let i = this.#files.length - 1; i >= 0; i--) {
      const file = this.#files[i]!;
      if (file === open || file.last > mark) continue;
      try {
        unlinkSync(join(this.#dir, file.name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') continue; // tried again after the next flush
      }
      this.#files.splice(i, 1);
    }
  }

  /** Stops writing; `remove`: the folder goes too (a clean stop whose last flush put every line in the store). */
  close(remove: boolean): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    if (remove) rmSync(this.#dir, { recursive: true, force: true });
  }

  /** A new file named by its first seq. */
  #openFile(first: number): number {
    const name = `${String(first).padStart(16, '0')}.jsonl`;
    const fd = openSync(join(this.#dir, name), 'a', 0o600);
    this.#fd = fd;
    this.#bytes = fstatSync(fd).size;
    this.#files.push({ name, last: 0 });
    return fd;
  }
}

/** Every line of a journal folder's files in rising seq, and how many were not the journal's (skipped). */
function readLines(dir: string): { lines: Found[]; skipped: number } {
  const lines: Found[] = [];
  let skipped = 0;
  let last = 0;
  const names = readdirSync(dir)
    .filter((n) => FILE.test(n))
    .sort((x, y) => Number(FILE.exec(x)![1]) - Number(FILE.exec(y)![1]));
  for (const name of names) {
    for (const text of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (text === '') continue;
      const line = lineOf(text);
      if (line === undefined || line.s <= last) {
        skipped++;
        continue;
      }
      last = line.s;
      const entry: SpendEntry = { agent: line.a, grant: line.g, end_user: line.u, at: new Date(line.t), reading: line.r, cost_usd: line.c };
      lines.push({ seq: line.s, entry: line.p === undefined ? entry : { ...entry, ancestors: line.p } });
    }
  }
  return { lines, skipped };
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** A line of the journal's shape, or undefined. The entry's numbers are admitted again by the ledger (counts.ts admitted). */
function lineOf(text: string): Line | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const l = v as Record<string, unknown>;
  if (!Number.isSafeInteger(l['s']) || (l['s'] as number) < 1 || !Number.isSafeInteger(l['t'])) return undefined;
  if (!isTextOrNull(l['a']) || !isText(l['g']) || !isTextOrNull(l['u'])) return undefined;
  if (l['p'] !== undefined && !(Array.isArray(l['p']) && l['p'].every(isText))) return undefined;
  if (!(l['c'] === null || (typeof l['c'] === 'number' && Number.isFinite(l['c']) && l['c'] >= 0))) return undefined;
  const r = l['r'];
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return undefined;
  const reading = r as Record<string, unknown>;
  if (reading['basis'] !== 'reported' && reading['basis'] !== 'partial') return undefined;
  const usage = reading['usage'];
  if (usage !== undefined && (typeof usage !== 'object' || usage === null || Array.isArray(usage))) return undefined;
  return l as unknown as Line;
}
