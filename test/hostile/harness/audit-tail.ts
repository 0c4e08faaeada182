// Reads keyway's audit log as it grows, for joining its lines with what the raw upstream received.
// The suites set audit.max_bytes high enough that the file does not rotate during a run.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface AuditRecord {
  method: string | null;
  path: string | null;
  decision: string;
  code: string | null;
  status: number | null;
  host: string;
}

export class AuditTail {
  #offset = 0;
  #partial = '';
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  /** Lines written since the last call. */
  read(): AuditRecord[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return [];
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#offset) return [];
      const buffer = Buffer.alloc(size - this.#offset);
      readSync(fd, buffer, 0, buffer.length, this.#offset);
      this.#offset = size;
      const text = this.#partial + buffer.toString('utf8');
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      return lines.filter(Boolean).map((line) => JSON.parse(line) as AuditRecord);
    } finally {
      closeSync(fd);
    }
  }
}
