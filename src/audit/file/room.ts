// Space reservation for the audit log: a request is injected only when its line is sure to fit.
//
// A full disk shows only when an append fails, and lines are appended in batches after responses end,
// so without this every request forwarded between the disk filling and the first failed append (one
// batch, ~10-20 ms) carried the credential with no line to show for it. Instead the writer keeps an
// account of the room left for the log and what is promised out of it:
//
//   room      = min(free space of the log's filesystem (statfs, f_bavail) less what we appended since,
//                   RLIMIT_FSIZE ("Max file size", per file) less the live file's size)
//   promised  = bytes queued or kept but not yet appended + LINE_BOUND per injected request in flight
//
// A request is admitted to injection (reserve) only if room - promised - its LINE_BOUND >= ROOM_FLOOR;
// below that the writer reports unhealthy, so requests are refused 503 audit_unavailable BEFORE any
// append fails. A line that carries no credential (a refusal, a tunnel) is queued only if it fits
// without touching what injected requests were promised, otherwise it is dropped and counted: lines
// of requests that sent nothing never take the room of one that did.
//
// The facts are refreshed off the request path (every REFRESH_MS, and before every batch): admitting a
// request is arithmetic on numbers in memory. What this cannot see: another process filling the disk
// (or lowering the limit) faster than one refresh; ROOM_FLOOR absorbs some of that, and a failed append
// is still handled as before (lines kept, partial line cut, SIGXFSZ ignored).

import { stat, statfs } from 'node:fs/promises';
import { http } from '../../net/node-http.ts';
import { dirname } from 'node:path';
import { FileSizeLimit } from './proc-limits.ts';

/**
 * The most bytes one line can take, sealed, with its newline. What varies in a line comes from the
 * request head, which Node's parser caps at 16 KiB (maxHeaderSize; keyway does not raise it): the
 * normalised path (ASCII with `"` and `\` percent-encoded or refused, so one JSON byte per byte), the
 * host, override headers (path_override, method_override; header bytes, at most 6 JSON bytes each for
 * the rare escaped ones), names from the config (agent, grant, rule) and a refusal's message and
 * hint (at most 500 characters each: a few KiB however escaped). 4 x the header limit (64 KiB
 * by default) covers a path filling the whole head plus override values escaped twice over, plus the
 * fixed fields and the chain fields. Read from node:http, so --max-http-header-size raises it too.
 */
export const LINE_BOUND = Math.max(64 * 1024, 4 * http.maxHeaderSize);

/** Slack kept free beyond every promise: refusal lines, other processes, a refresh's staleness. */
export const ROOM_FLOOR = 1024 * 1024;

/** What sealing adds to a body: `,"seq":…,"prev":"<64 hex>","hash":"<64 hex>"`, a newline, rounded up. */
export const CHAIN_OVERHEAD = 256;

const REFRESH_MS = 100;

/** Facts about where the log is written (refreshed off the request path). */
export interface RoomFacts {
  /** Size of the live file as last seen (our own appends, or a stat). */
  fileSize: number;
  /** This process's soft RLIMIT_FSIZE in bytes; Infinity when unlimited or unknown. */
  fsizeLimit: number;
  /** audit.max_bytes: the live file is rotated before passing it. 0: never. */
  maxBytes: number;
  /** Free bytes for unprivileged users on the log's filesystem at the last statfs; Infinity if unknown. */
  diskFree: number;
  /** Bytes appended since that statfs. */
  appendedSinceStatfs: number;
}

/** What is promised out of the room. */
export interface Promised {
  /** Bytes queued or kept in memory, each counted at lineCost. */
  pendingBytes: number;
  /** Injected requests in flight, each holding LINE_BOUND. */
  reservedLines: number;
}

/** Bytes that can still be appended to the log before a write fails. */
export function roomLeft(f: RoomFacts): number {
  const disk = f.diskFree - f.appendedSinceStatfs;
  // With rotation well inside the limit, a file never grows near RLIMIT_FSIZE: rotation starts a new
  // one first (the limit applies per file). Otherwise the live file's own size counts.
  const rotatesFirst = f.maxBytes > 0 && f.maxBytes + LINE_BOUND <= f.fsizeLimit;
  const file = rotatesFirst ? Number.POSITIVE_INFINITY : f.fsizeLimit - f.fileSize;
  return Math.min(disk, file);
}

function unpromised(room: number, p: Promised): number {
  return room - p.pendingBytes - p.reservedLines * LINE_BOUND;
}

/** Room left past one more injected request's line and ROOM_FLOOR; negative: it cannot be admitted. */
export function spareRoom(room: number, p: Promised): number {
  return unpromised(room, p) - LINE_BOUND - ROOM_FLOOR;
}

/** Whether one more injected request can be promised its line, with ROOM_FLOOR left over. */
export function canAdmit(room: number, p: Promised): boolean {
  return spareRoom(room, p) >= 0;
}

/**
 * Once a request was refused for room, how much spare must come back before requests are admitted
 * again. Without it admission flapped at the threshold: a refusal, then the queued lines appended at
 * less than their promised cost, room enough for one more, and /readyz said ready between refusals.
 */
export const RESUME_SPARE = 4 * LINE_BOUND;

/** Whether the log is (still) short of room, given whether it was: refusing starts at 0, admitting again at RESUME_SPARE. */
export function shortOfRoom(wasShort: boolean, spare: number): boolean {
  return spare < (wasShort ? RESUME_SPARE : 0);
}

/** Whether a line of `cost` bytes that nobody reserved fits without taking anything promised. */
export function fitsUnpromised(room: number, p: Promised, cost: number): boolean {
  return unpromised(room, p) >= cost;
}

/** The bytes a line of this body is counted at, until it is appended. */
export function lineCost(body: string): number {
  return Buffer.byteLength(body) + CHAIN_OVERHEAD;
}

/** The room a set of lines takes in the log. */
export function costOf(bodies: readonly string[]): number {
  let cost = 0;
  for (const body of bodies) cost += lineCost(body);
  return cost;
}

export { parseFsizeLimit } from './proc-limits.ts';

/** The writer's account of room and promises; every method the request path calls is synchronous. */
export class AuditRoom {
  readonly #path: string;
  readonly #facts: RoomFacts;
  readonly #promised: Promised = { pendingBytes: 0, reservedLines: 0 };
  #refreshing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #fsizeLimit = new FileSizeLimit();
  /** Counts our appends, so a refresh can tell whether one happened while it was reading. */
  #appends = 0;

  constructor(path: string, maxBytes: number) {
    this.#path = path;
    this.#facts = { fileSize: 0, fsizeLimit: Number.POSITIVE_INFINITY, maxBytes, diskFree: Number.POSITIVE_INFINITY, appendedSinceStatfs: 0 };
  }

  /** Set from the first refusal for room until RESUME_SPARE is back (shortOfRoom). */
  #short = false;

  /** Room enough to admit an injected request. Readiness and admission read this one answer. */
  get roomy(): boolean {
    this.#short = shortOfRoom(this.#short, spareRoom(roomLeft(this.#facts), this.#promised));
    return !this.#short;
  }

  /** Promise one injected request its line; false when there is not room enough. */
  reserve(): boolean {
    if (!this.roomy) return false;
    this.#promised.reservedLines += 1;
    return true;
  }

  /** The request's line is queued (or will never be): its LINE_BOUND goes back. */
  release(): void {
    this.#promised.reservedLines = Math.max(this.#outside, this.#promised.reservedLines - 1);
  }

  /** Injected requests promised a line: this process's and those of the processes that hand their lines here. */
  get promisedLines(): number {
    return this.#promised.reservedLines;
  }

  /** Lines promised by other processes that hand their lines to this writer (a primary's workers). */
  #outside = 0;

  /**
   * Other processes' promises, counted as this writer's own: the injected requests a primary's
   * workers have in flight (app/workers/shared-audit.ts), so that one account covers every line
   * this file will get. `lines`: their number now.
   */
  setOutside(lines: number): void {
    this.#promised.reservedLines += lines - this.#outside;
    this.#outside = lines;
  }

  /** Whether a line nobody reserved can be queued without taking promised room. */
  fits(cost: number): boolean {
    return fitsUnpromised(roomLeft(this.#facts), this.#promised, cost);
  }

  queued(cost: number): void {
    this.#promised.pendingBytes += cost;
  }

  /** Lines given up (dropped while kept): no longer pending. */
  settled(cost: number): void {
    this.#promised.pendingBytes = Math.max(0, this.#promised.pendingBytes - cost);
  }

  /** Lines appended: no longer pending, now in a file that is `fileSize` bytes long (if known). */
  appended(cost: number, fileSize?: number): void {
    this.settled(cost);
    this.#facts.appendedSinceStatfs += cost;
    if (fileSize !== undefined) this.#facts.fileSize = fileSize;
    else this.#facts.fileSize += cost;
    this.#appends += 1;
  }

  /** Read the facts again (statfs, the file's size, the file-size limit). One at a time; never throws. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#read().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** Refresh every REFRESH_MS, so room coming back (or going) is seen without traffic. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#fsizeLimit.close();
  }

  async #read(): Promise<void> {
    const appendsBefore = this.#appends;
    const appendedBefore = this.#facts.appendedSinceStatfs;
    const [fs, st, limits] = await Promise.allSettled([statfs(dirname(this.#path)), stat(this.#path), this.#fsizeLimit.read()]);
    if (fs.status === 'fulfilled') {
      // A filesystem that reports no size at all (some FUSE and network ones) tells us nothing:
      // treat its free space as unknown rather than as none, which would refuse every request.
      this.#facts.diskFree = fs.value.blocks === 0 ? Number.POSITIVE_INFINITY : fs.value.bavail * fs.value.bsize;
      // Appends that finished while statfs ran may or may not be in its figure: keep counting them.
      this.#facts.appendedSinceStatfs -= appendedBefore;
    }
    if (st.status === 'fulfilled') {
      // If we appended meanwhile, the stat may predate it: keep the larger (a rotation in between
      // then counts the old size, which errs on the side of less room until the next refresh).
      this.#facts.fileSize = this.#appends === appendsBefore ? st.value.size : Math.max(st.value.size, this.#facts.fileSize);
    }
    if (limits.status === 'fulfilled') this.#facts.fsizeLimit = limits.value;
  }
}
