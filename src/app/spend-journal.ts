// The spend ledger's journal (issue 85): every metered answer's count, appended to a file in the
// data directory before the answer's end is given to the agent, so that a crash (SIGKILL, OOM, a
// power-less host is another matter: see below) loses no count a client received. The ledger adds
// counts to the store only every FLUSH_MS (spend-ledger.ts): without this, a kill lost the last
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
// counted in memory before the flush took its batch). At start the lines after that seq are counted
// again (spend records and budgets both) and flushed; lines at or before it are not (a clean
// restart counts nothing twice). The id is this journal's own (made once per data directory), so
// replicas on one PostgreSQL store, each with its own data directory, each keep their own mark.
//
// What it admits when read back: lines `{"s":seq,"e":entry}` whose entry has the ledger's shape;
// any other line (a torn last line of a killed process, anything written by something else) is
// skipped and said so. Files: spend-journal/id, and spend-journal/<first seq>.jsonl; each start
// appends to a new file (never after a torn line), a file past ROTATE_BYTES is followed by a new
// one, and a file whose every line a flush has put in the store is deleted.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { SpendEntry } from '../spend/ledger.ts';
import type { UsageReading } from '../spend/usage.ts';

/** The store record that says up to which line this journal's counts are in the store. */
export const JOURNAL_MARK_PREFIX = 'spend-journal:';
/** A file past this is followed by a new one at the next flush, so that flushed lines can be deleted. */
const ROTATE_BYTES = 1 << 20;
const FILE = /^(\d{1,16})\.jsonl$/;
const ID = /^[0-9a-f]{32}$/;

export interface JournalMark {
  readonly seq: number;
}

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
}

export class SpendJournal {
  readonly #dir: string;
  /** This journal's id: its store mark is `spend-journal:<id>`. */
  readonly id: string;
  /** Every line read at open (seq, entry): the ledger counts those past the store's mark. */
  readonly #found: Array<{ seq: number; entry: SpendEntry }>;
  readonly #files: JournalFile[];
  /** Lines read at open that were not the journal's shape (a torn last line, mostly). */
  readonly skipped: number;
  #fd: number | undefined;
  #bytes = 0;
  #seq: number;

  private constructor(dir: string, id: string, found: Array<{ seq: number; entry: SpendEntry }>, files: JournalFile[], skipped: number) {
    this.#dir = dir;
    this.id = id;
    this.#found = found;
    this.#files = files;
    this.skipped = skipped;
    this.#seq = files.reduce((max, f) => Math.max(max, f.last), 0);
  }

  /** Opens (or makes) the journal in `dataDir`, reading every line kept. */
  static open(dataDir: string): SpendJournal {
    const dir = join(dataDir, 'spend-journal');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const idPath = join(dir, 'id');
    let id: string;
    try {
      id = readFileSync(idPath, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      id = '';
    }
    if (!ID.test(id)) {
      id = randomBytes(16).toString('hex');
      writeFileSync(idPath, `${id}\n`, { mode: 0o600 });
    }
    const found: Array<{ seq: number; entry: SpendEntry }> = [];
    const files: JournalFile[] = [];
    let skipped = 0;
    const names = readdirSync(dir)
      .filter((n) => FILE.test(n))
      .sort((x, y) => Number(FILE.exec(x)![1]) - Number(FILE.exec(y)![1]));
    for (const name of names) {
      const file: JournalFile = { name, last: 0 };
      for (const text of readFileSync(join(dir, name), 'utf8').split('\n')) {
        if (text === '') continue;
        const line = lineOf(text);
        if (line === undefined || line.s <= file.last) {
          skipped++;
          continue;
        }
        file.last = line.s;
        found.push({ seq: line.s, entry: { agent: line.a, grant: line.g, end_user: line.u, at: new Date(line.t), reading: line.r, cost_usd: line.c } });
      }
      files.push(file);
    }
    return new SpendJournal(dir, id, found, files, skipped);
  }

  /** The store record id of this journal's mark. */
  get markId(): string {
    return `${JOURNAL_MARK_PREFIX}${this.id}`;
  }

  /** The last seq appended (or read, or the store's mark when that is further): a flush's mark. */
  get lastSeq(): number {
    return this.#seq;
  }

  /**
   * The lines past `mark` (the seq the store holds counts up to): those the store does not have.
   * Seqs go on from whichever is further, the lines or the mark (the files of flushed lines may be gone).
   */
  unflushed(mark: number): SpendEntry[] {
    this.#seq = Math.max(this.#seq, mark);
    const out = this.#found.filter((f) => f.seq > mark).map((f) => f.entry);
    this.#found.length = 0;
    return out;
  }

  /** Appends one entry (one write(2)); returns its seq. Throws when the file cannot be written. */
  append(entry: SpendEntry): number {
    const seq = this.#seq + 1;
    const line: Line = { s: seq, a: entry.agent, g: entry.grant, u: entry.end_user, t: entry.at.getTime(), r: entry.reading, c: entry.cost_usd };
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

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** A new file named by its first seq: each start writes to a file of its own, never after another's torn line. */
  #openFile(first: number): number {
    const name = `${String(first).padStart(16, '0')}.jsonl`;
    const fd = openSync(join(this.#dir, name), 'a', 0o600);
    this.#fd = fd;
    this.#bytes = fstatSync(fd).size;
    this.#files.push({ name, last: 0 });
    return fd;
  }
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** A line of the journal's shape, or undefined. The entry's numbers are admitted again by the ledger (spend-counts.ts admitted). */
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
  if (!(l['c'] === null || (typeof l['c'] === 'number' && Number.isFinite(l['c']) && l['c'] >= 0))) return undefined;
  const r = l['r'];
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return undefined;
  const reading = r as Record<string, unknown>;
  if (reading['basis'] !== 'reported' && reading['basis'] !== 'partial') return undefined;
  const usage = reading['usage'];
  if (usage !== undefined && (typeof usage !== 'object' || usage === null || Array.isArray(usage))) return undefined;
  return l as unknown as Line;
}
