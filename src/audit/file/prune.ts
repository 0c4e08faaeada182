// Deleting rotated files past `audit.keep`, oldest first, and recording what was deleted (../pruned.ts)
// so verify can name it. Runs under the audit lock, right after a rotation (log-files.ts).
//
// audit.min_retention: a file last written (its mtime: a rename keeps it) less than that long ago is
// not deleted, nor is any newer one, even past `keep`. A flood of lines then costs disk instead of
// evidence; what is held is reported (the writer's retentionHold: app log, /metrics, /readyz).

import { stat, unlink } from 'node:fs/promises';
import { firstChainedLine, lastChainedLine, listRotated } from '../chain-files.ts';
import type { RotatedFile } from '../chain-files.ts';
import { readPruned, withRange, writePruned } from '../pruned.ts';
import type { RetentionHold } from '../retention.ts';

export interface PrunerOptions {
  /** The live file; rotated files sit beside it. */
  path: string;
  prunedPath: string;
  headKey: Buffer;
  keep: number;
  /** 0: off. */
  minRetentionMs: number;
}

export class Pruner {
  readonly #path: string;
  readonly #prunedPath: string;
  readonly #headKey: Buffer;
  readonly #keep: number;
  readonly #minRetentionMs: number;
  /** Size and mtime of rotated files seen by #aged: rotated files do not change. */
  readonly #fileFacts = new Map<string, { bytes: number; mtimeMs: number }>();

  constructor(opts: PrunerOptions) {
    this.#path = opts.path;
    this.#prunedPath = opts.prunedPath;
    this.#headKey = opts.headKey;
    this.#keep = opts.keep;
    this.#minRetentionMs = opts.minRetentionMs;
  }

  /**
   * Delete rotated files past `keep`, oldest first, after recording (MAC'd) the last line deleted and
   * the range deleted, so verify can tell pruning from a file removed by hand and name what pruning
   * took. A file last written less than min_retention ago stops the pruning there: it and every newer
   * file are kept past `keep` (and the hold reported), so a flood of lines cannot push recent
   * evidence out; the disk guard (room.ts) still refuses injection when the disk truly fills.
   * Files already covered by the record (left by a crash between recording and deleting) are deleted
   * too. A record that does not authenticate is left alone, and nothing is deleted, so verify still
   * reports it (extending it would sign over the tampering). Returns the files min_retention held.
   */
  async prune(): Promise<RetentionHold | null> {
    const record = await readPruned(this.#prunedPath, this.#headKey);
    if (record.kind === 'bad_mac' || record.kind === 'unreadable') return null;
    if (record.ranges !== undefined && (record.ranges.kind === 'bad_mac' || record.ranges.kind === 'unreadable')) return null;
    const baseSeq = record.kind === 'ok' ? record.head.seq : 0;
    const ranges = record.ranges?.kind === 'ok' ? record.ranges.list : [];
    const files = await listRotated(this.#path);
    const doomed = files.filter((f) => f.firstSeq <= baseSeq);
    const live = files.filter((f) => f.firstSeq > baseSeq);
    const excess = Math.max(0, live.length - this.#keep);
    const now = Date.now();
    const aged = await this.#aged(live.slice(0, excess), now);
    const young = aged.findIndex((f) => f.ageMs < this.#minRetentionMs);
    const pruning = young === -1 ? aged : aged.slice(0, young);
    const held = aged.slice(pruning.length);
    if (pruning.length > 0) {
      const newest = pruning.at(-1)!;
      const last = await lastChainedLine(newest.file.path);
      if (last !== null && last.seq > baseSeq) {
        const first = await firstChainedLine(pruning[0]!.file.path).catch(() => null);
        const range = {
          first_seq: baseSeq + 1,
          last_seq: last.seq,
          files: pruning.length,
          bytes: pruning.reduce((sum, f) => sum + f.bytes, 0),
          pruned_at: new Date(now).toISOString(),
          age_ms: Math.max(0, Math.round(newest.ageMs)),
          first_ts: first?.ts ?? null,
          last_ts: last.ts,
          prunings: 1,
        };
        await writePruned(this.#prunedPath, this.#headKey, { seq: last.seq, hash: last.hash }, withRange(ranges, range));
        doomed.push(...pruning.map((f) => f.file));
      }
    }
    for (const f of doomed) {
      await unlink(f.path).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      });
    }
    if (held.length === 0) return null;
    return { files: held.length, bytes: held.reduce((sum, f) => sum + f.bytes, 0), oldestAgeMs: Math.round(held[0]!.ageMs) };
  }

  /**
   * Each file with its size and how long ago it was last written (its mtime; rename keeps it). A
   * rotated file is never appended to again, so its figures are cached: while min_retention holds
   * hundreds of files, a rotation stats only the file it just made, not every held one (which made
   * a flood's rotations O(files) each and slowed the writer until the backlog refused requests).
   */
  async #aged(files: RotatedFile[], now: number): Promise<Array<{ file: RotatedFile; bytes: number; ageMs: number }>> {
    const out = [];
    for (const file of files) {
      let facts = this.#fileFacts.get(file.path);
      if (facts === undefined) {
        const st = await stat(file.path);
        facts = { bytes: st.size, mtimeMs: st.mtimeMs };
        this.#fileFacts.set(file.path, facts);
      }
      out.push({ file, bytes: facts.bytes, ageMs: now - facts.mtimeMs });
    }
    // Forget files no longer listed (pruned, by us or another process).
    if (this.#fileFacts.size > files.length) {
      const listed = new Set(files.map((f) => f.path));
      for (const path of this.#fileFacts.keys()) if (!listed.has(path)) this.#fileFacts.delete(path);
    }
    return out;
  }
}
