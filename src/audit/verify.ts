// `keyway audit verify`: walk the chain line by line through every file it spans (rotated files
// oldest first, then the live file), then hold its end against the head file.
//
// Where rotation deleted old files, the chain starts at the line the pruned record names (MAC'd with
// the head key): the oldest kept file must continue from exactly that line. So a middle file that was
// edited, removed or renamed shows as a problem naming that file and line, and so does an old file
// deleted by hand (no record covers it). A log rotation pruned is intact but not whole: the result
// names every range pruned (pruned.ts), and which were pruned sooner than audit.min_retention.
// Each line's policy hash must have been loaded by an earlier policy.load line (policy-loads.ts).

import { KeywayError } from '../errors/index.ts';
import { ChainChecker } from './chain.ts';
import { CrashArtifacts, type CrashArtifact } from './crash-artifacts.ts';
import type { AuditProblem } from './chain.ts';
import { listRotated } from './chain-files.ts';
import { prunedPathFor, readPruned, type PrunedRange, type PrunedState } from './pruned.ts';
import type { RotatedFile } from './chain-files.ts';
import { readHead } from './head.ts';
import { PolicyLoads } from './policy-loads.ts';
import type { ChainHead, HeadState } from './head.ts';
import { readLinesAt } from './lines.ts';
import { GENESIS_HASH, parseLine } from './record.ts';

export type { AuditProblem } from './chain.ts';
export type { CrashArtifact } from './crash-artifacts.ts';

export interface VerifyOptions {
  path: string;
  headPath: string;
  headKey: Buffer;
  /** The pruned record written by rotation; default beside the head file (prunedPathFor). */
  prunedPath?: string | undefined;
  /** audit.min_retention: a range whose newest line was younger than this when pruned is flagged `early`. */
  minRetentionMs?: number | undefined;
  /** A seq whose hash, as this verify walked it, the caller wants back (`pinned`). */
  pin?: number | undefined;
}

/** What rotation deleted: present only when it deleted something. */
export interface PrunedReport {
  /** Every pruning recorded, oldest first; `early`: its newest line was younger than min_retention. */
  ranges: Array<PrunedRange & { early: boolean }>;
  /** Lines pruned by a keyway that did not record ranges yet (before pruning was recorded): seq and nothing more known. */
  unrecorded?: { first_seq: number; last_seq: number };
  /** Lines deleted by rotation in all: seq 1 up to the last line pruned. */
  lines: number;
  /** How many ranges were pruned sooner than min_retention_ms after their newest line was written. */
  early: number;
  min_retention_ms: number;
}

export interface VerifyResult {
  ok: boolean;
  /** Lines read, including unparseable ones. */
  lines: number;
  problems: AuditProblem[];
  /** The files checked, oldest first; present only when the log has rotated files. */
  files?: string[];
  /** What rotation deleted (the chain starts after it); present only when it deleted something. */
  pruned?: PrunedReport;
  /** The hash of the line at `pin`, as verified; absent when that line was not on the chain. */
  pinned?: string;
  /**
   * Requests with a write-ahead line and no outcome line: in flight as the log was read, or keyway
   * was stopped (killed, crashed) while serving them. Not a problem: the credential's use is recorded.
   */
  unanswered?: number;
  /**
   * Lines past the one the head file names: written since keyway last recorded its head (it does so
   * at most every 250 ms, and at stop), so a line removed from among them would not show. After a
   * SIGKILL, the lines of its last moments; 0 is left out.
   */
  unvouched?: number;
  /** Torn last lines (a crash mid-append): the one at the log's end, and those kept aside and recorded by `recovered` lines. Not problems. */
  crash_artifacts?: CrashArtifact[];
}

export async function verifyAudit(opts: VerifyOptions): Promise<VerifyResult> {
  // A rotation by a running keyway during the walk can make a sound log look broken (the file list
  // was read before it); such a result is checked again, a few times at most.
  let result: VerifyResult | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const rotated = await listFiles(opts.path);
    const prunedPath = opts.prunedPath ?? prunedPathFor(opts.headPath);
    const head = await loadState(() => readHead(opts.headPath, opts.headKey), `audit head file ${opts.headPath}`);
    const pruned = await loadState(() => readPruned(prunedPath, opts.headKey), `audit pruned record ${prunedPath}`);
    result = await verifyChain({ rotated, live: opts.path, head, pruned, prunedPath, minRetentionMs: opts.minRetentionMs ?? 0, pin: opts.pin });
    if (result.ok) return result;
    const after = await listFiles(opts.path);
    const same = after.length === rotated.length && after.every((f, i) => f.path === rotated[i]?.path);
    if (same) return result;
  }
  return result!;
}

async function listFiles(path: string): Promise<RotatedFile[]> {
  try {
    return await listRotated(path);
  } catch (err) {
    throw new KeywayError('audit_invalid', `the folder of audit log ${path} cannot be listed`, { cause: err });
  }
}

interface ChainInput {
  rotated: RotatedFile[];
  live: string;
  head: HeadState;
  pruned: PrunedState;
  prunedPath: string;
  minRetentionMs: number;
  pin: number | undefined;
}

async function verifyChain(input: ChainInput): Promise<VerifyResult> {
  const { head, pruned } = input;
  const trusted = head.kind === 'ok' ? head.head : undefined;
  // Where the kept files must start: after the last line rotation deleted, else at the beginning.
  const base: ChainHead = pruned.kind === 'ok' ? pruned.head : { seq: 0, hash: GENESIS_HASH };
  const checker = new ChainChecker(trusted === undefined ? { start: base, pin: input.pin } : { start: base, watch: trusted, pin: input.pin });
  const artifacts = new CrashArtifacts(input.live);
  if (pruned.kind === 'bad_mac') {
    checker.report(0, 'pruned record tampered: its MAC does not match (or the head key is not the one that wrote it)', input.prunedPath);
  } else if (pruned.kind === 'unreadable') {
    checker.report(0, 'pruned record unreadable', input.prunedPath);
  }
  const report = prunedReport(input, checker);
  // Files wholly before the base were already recorded as pruned (a crash kept them from being
  // deleted): they are no longer part of the chain that is checked.
  const kept = input.rotated.filter((f) => f.firstSeq > base.seq);
  const tagFiles = input.rotated.length > 0;
  const files = [...kept.map((f) => ({ path: f.path, named: f.firstSeq as number | undefined })), { path: input.live, named: undefined }];
  let lines = 0;
  let lastFileLines = 0;
  const firstLines = new Map<string, number>();
  const policies = new PolicyLoads();
  for (const file of files) {
    const tag = tagFiles ? file.path : undefined;
    const fed = await feedFile(checker, artifacts, policies, file.path, tag, file.path === input.live);
    lastFileLines = fed.lines;
    lines += fed.lines;
    if (fed.firstSeq !== undefined) firstLines.set(file.path, fed.firstLine);
    if (file.named !== undefined && fed.firstSeq !== undefined && fed.firstSeq !== file.named) {
      checker.report(
        fed.firstLine,
        `the file is named for seq ${file.named} but its first line is seq ${fed.firstSeq}: it was renamed, reordered or replaced`,
        file.path,
      );
    }
  }
  const end = checker.last;
  const tailLine = lastFileLines;
  const liveTag = tagFiles ? input.live : undefined;
  if (head.kind === 'missing') {
    if (end.seq > 0) checker.report(0, 'head file missing: a removed tail cannot be ruled out', liveTag);
  } else if (head.kind === 'unreadable') {
    checker.report(0, 'head file unreadable', liveTag);
  } else if (head.kind === 'bad_mac') {
    checker.report(0, 'head file tampered: its MAC does not match (or the head key is not the one that wrote it)', liveTag);
  } else if (head.head.seq > end.seq) {
    const gone = head.head.seq - end.seq;
    checker.report(tailLine, `tail removed: the head file records seq ${head.head.seq} but the log ends at seq ${end.seq} (${gone} line(s) missing)`, liveTag);
  } else if (!checker.watchFound && head.head.seq > base.seq) {
    // The file may run ahead of the head (lines appended after it was written), but the line the
    // head names must be on the chain exactly (unless rotation has since deleted it).
    checker.report(tailLine, `the head file's seq ${head.head.seq} and hash are not on the chain: lines were replaced`, liveTag);
  }
  const crash = await artifacts.check((line, reason, file) => checker.report(line, reason, file));
  const problems = tagFiles ? checker.problems.map((p) => explainFileGap(p, files[0]?.path, firstLines, pruned.kind === 'ok')) : checker.problems;
  const result: VerifyResult = { ok: problems.length === 0, lines, problems };
  if (tagFiles) result.files = files.map((f) => f.path);
  if (report !== undefined) result.pruned = report;
  if (checker.pinned !== undefined) result.pinned = checker.pinned;
  if (checker.unanswered > 0) result.unanswered = checker.unanswered;
  if (head.kind === 'ok' && end.seq > head.head.seq) result.unvouched = end.seq - head.head.seq;
  if (crash.length > 0) result.crash_artifacts = crash;
  return result;
}

/**
 * What the pruned record says rotation deleted, checked against its own seq: the ranges must follow
 * each other and end at the last line pruned. Problems go to the checker (the record is then not
 * to be trusted as a list); undefined when nothing was pruned.
 */
function prunedReport(input: ChainInput, checker: ChainChecker): PrunedReport | undefined {
  const { pruned, prunedPath, minRetentionMs } = input;
  if (pruned.kind !== 'ok' || pruned.head.seq === 0) return undefined;
  const ranges = pruned.ranges ?? { kind: 'absent' as const };
  if (ranges.kind === 'bad_mac') {
    checker.report(0, 'pruned record tampered: its list of pruned ranges does not match its MAC', prunedPath);
    return undefined;
  }
  if (ranges.kind === 'unreadable') {
    checker.report(0, 'pruned record unreadable: its list of pruned ranges', prunedPath);
    return undefined;
  }
  const list = ranges.kind === 'ok' ? ranges.list : [];
  const firstRecorded = list[0]?.first_seq ?? pruned.head.seq + 1;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    const next = list[i + 1]?.first_seq ?? pruned.head.seq + 1;
    if (r.first_seq > r.last_seq || r.last_seq + 1 !== next) {
      checker.report(0, `pruned record inconsistent: range seq ${r.first_seq}-${r.last_seq} does not end where the next one starts`, prunedPath);
      return undefined;
    }
  }
  const report: PrunedReport = {
    ranges: list.map((r) => ({ ...r, early: r.age_ms < minRetentionMs })),
    lines: pruned.head.seq,
    early: 0,
    min_retention_ms: minRetentionMs,
  };
  report.early = report.ranges.filter((r) => r.early).length;
  if (firstRecorded > 1) report.unrecorded = { first_seq: 1, last_seq: firstRecorded - 1 };
  return report;
}

/** A gap at the first line of a file is most likely a whole file removed before it: say so. */
function explainFileGap(p: AuditProblem, firstFile: string | undefined, firstLines: Map<string, number>, prunedRecord: boolean): AuditProblem {
  if (p.file === undefined || firstLines.get(p.file) !== p.line || !p.reason.includes('seq jumps from')) return p;
  const hint =
    p.file === firstFile
      ? prunedRecord
        ? 'the oldest kept file does not start where rotation last pruned: an older file was removed by hand'
        : 'older files were removed without a rotation record'
      : 'a whole file before this one was removed, or the files were reordered';
  return { ...p, reason: `${p.reason} (${hint})` };
}

async function loadState<T extends HeadState>(read: () => Promise<T>, what: string): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new KeywayError('audit_invalid', `${what} cannot be read`, { cause: err });
  }
}

/**
 * Feed every line of one file to the checker; returns how many lines it had and its first seq. The
 * live file's unterminated last bytes are a crash artifact, not a line (`live`); anywhere else they
 * fail as the unparseable or cut-short line they are.
 */
async function feedFile(
  checker: ChainChecker,
  artifacts: CrashArtifacts,
  policies: PolicyLoads,
  path: string,
  tag: string | undefined,
  live: boolean,
): Promise<{ lines: number; firstSeq: number | undefined; firstLine: number }> {
  let n = 0;
  let firstSeq: number | undefined;
  let firstLine = 0;
  try {
    for await (const { text, offset, terminated } of readLinesAt(path)) {
      n++;
      if (!terminated && live) {
        artifacts.torn(n, offset, Buffer.byteLength(text), tag);
        continue;
      }
      const rec = parseLine(text);
      if (rec !== null && firstSeq === undefined) {
        firstSeq = rec.seq;
        firstLine = n;
      }
      checker.feed(text, n, tag);
      const unloaded = rec === null ? undefined : policies.check(rec);
      if (unloaded !== undefined) checker.report(n, unloaded, tag);
      if (!terminated) checker.report(n, 'the file ends in a line cut short (no newline) before the end of the log', tag);
      if (rec?.recovered !== undefined) {
        const wrong = artifacts.recovered(rec, n, offset, tag);
        if (wrong !== null) checker.report(n, wrong, tag);
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && n === 0) return { lines: 0, firstSeq: undefined, firstLine: 0 };
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
  return { lines: n, firstSeq, firstLine };
}
