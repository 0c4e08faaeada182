// Reads this process's "Max file size" (RLIMIT_FSIZE) from /proc/self/limits through one kept file
// handle: the room check reads it before every audit batch, and readFile's open, fstat, read and
// close (four thread-pool round trips, ~3% of keyway's CPU under load) became one pread from offset 0,
// which procfs answers with the limits as they are now (a prlimit from outside shows at once).

import { open, type FileHandle } from 'node:fs/promises';

const LIMITS_PATH = '/proc/self/limits';
const BUFFER_BYTES = 8192; // the file is ~1.3 KiB

/** The soft "Max file size" of /proc/self/limits, in bytes; Infinity when unlimited or absent. */
export function parseFsizeLimit(limits: string): number {
  const match = /^Max file size\s+(\S+)/m.exec(limits);
  if (match === null || match[1] === 'unlimited') return Number.POSITIVE_INFINITY;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) && value >= 0 ? value : Number.POSITIVE_INFINITY;
}

/** One reader per AuditRoom, which runs one refresh at a time (the buffer is shared between reads). */
export class FileSizeLimit {
  #handle: Promise<FileHandle> | null = null;
  readonly #buffer = Buffer.alloc(BUFFER_BYTES);
  #closed = false;

  /** The soft limit in bytes; Infinity when unlimited or unknown. Rejects when the file cannot be read. */
  async read(): Promise<number> {
    if (this.#closed) return this.#readOnce(); // the writer's last batches, after the room stopped
    this.#handle ??= open(LIMITS_PATH, 'r');
    const handle = this.#handle;
    try {
      const { bytesRead } = await (await handle).read(this.#buffer, 0, BUFFER_BYTES, 0);
      return parseFsizeLimit(this.#buffer.toString('latin1', 0, bytesRead));
    } catch (err) {
      // Open afresh next time (and never leak the handle that failed).
      if (this.#handle === handle) this.#handle = null;
      void handle.then((h) => h.close()).catch(() => undefined);
      throw err;
    }
  }

  async #readOnce(): Promise<number> {
    const handle = await open(LIMITS_PATH, 'r');
    try {
      const { bytesRead } = await handle.read(this.#buffer, 0, BUFFER_BYTES, 0);
      return parseFsizeLimit(this.#buffer.toString('latin1', 0, bytesRead));
    } finally {
      await handle.close();
    }
  }

  /** Lets go of the kept handle; later reads open and close the file each time. */
  close(): void {
    this.#closed = true;
    const handle = this.#handle;
    this.#handle = null;
    void handle?.then((h) => h.close()).catch(() => undefined);
  }
}
