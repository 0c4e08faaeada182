// `keyway audit verify`: walk the chain line by line through every file it spans (rotated files
// oldest first, then the live file), then hold its end against the head file.
//
// Where rotation deleted old files, the chain starts at the line the pruned record names (MAC'd with
// the head key): the oldest kept file must continue from exactly that line. So a middle file that was
// edited, removed or renamed shows as a problem naming that file and line, and so does an old file
// deleted by hand (no record covers it).

import { KeywayError } from '../errors/index.ts';
import { ChainChecker } from './chain.ts';
import type { AuditProblem } from './chain.ts';
import { listRotated, prunedPathFor, readPruned } from './files.ts';
import type { RotatedFile } from './files.ts';
import { readHead } from './head.ts';
import type { ChainHead, HeadState } from './head.ts';
import { readLines } from './lines.ts';
import { GENESIS_HASH, parseLine } from './record.ts';

export type { AuditProblem } from './chain.ts';

export interface VerifyOptions {
  path: string;
  headPath: string;
  headKey: Buffer;
  /** The pruned record written by rotation; default beside the head file (prunedPathFor). */
  prunedPath?: string | undefined;
}

export interface VerifyResult {
  ok: boolean;
  /** Lines read, including unparseable ones. */
  lines: number;
  problems: AuditProblem[];
  /** The files checked, oldest first; present only when the log has rotated files. */
  files?: string[];
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
    result = await verifyChain({ rotated, live: opts.path, head, pruned, prunedPath });
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
  pruned: HeadState;
  prunedPath: string;
}

async function verifyChain(input: ChainInput): Promise<VerifyResult> {
  const { head, pruned } = input;
  const trusted = head.kind === 'ok' ? head.head : undefined;
  // Where the kept files must start: after the last line rotation deleted, else at the beginning.
  const base: ChainHead = pruned.kind === 'ok' ? pruned.head : { seq: 0, hash: GENESIS_HASH };
  const checker = new ChainChecker(trusted === undefined ? { start: base } : { start: base, watch: trusted });
  if (pruned.kind === 'bad_mac') {
    checker.report(0, 'pruned record tampered: its MAC does not match (or the head key is not the one that wrote it)', input.prunedPath);
  } else if (pruned.kind === 'unreadable') {
    checker.report(0, 'pruned record unreadable', input.prunedPath);
  }
  // Files wholly before the base were already recorded as pruned (a crash kept them from being
  // deleted): they are no longer part of the chain that is checked.
  const kept = input.rotated.filter((f) => f.firstSeq > base.seq);
  const tagFiles = input.rotated.length > 0;
  const files = [...kept.map((f) => ({ path: f.path, named: f.firstSeq as number | undefined })), { path: input.live, named: undefined }];
  let lines = 0;
  let lastFileLines = 0;
  const firstLines = new Map<string, number>();
  for (const file of files) {
    const tag = tagFiles ? file.path : undefined;
    const fed = await feedFile(checker, file.path, tag);
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
  const problems = tagFiles ? checker.problems.map((p) => explainFileGap(p, files[0]?.path, firstLines, pruned.kind === 'ok')) : checker.problems;
  const result: VerifyResult = { ok: problems.length === 0, lines, problems };
  if (tagFiles) result.files = files.map((f) => f.path);
  return result;
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

async function loadState(read: () => Promise<HeadState>, what: string): Promise<HeadState> {
  try {
    return await read();
  } catch (err) {
    throw new KeywayError('audit_invalid', `${what} cannot be read`, { cause: err });
  }
}

/** Feed every line of one file to the checker; returns how many lines it had and its first seq. */
async function feedFile(
  checker: ChainChecker,
  path: string,
  tag: string | undefined,
): Promise<{ lines: number; firstSeq: number | undefined; firstLine: number }> {
  let n = 0;
  let firstSeq: number | undefined;
  let firstLine = 0;
  try {
    for await (const text of readLines(path)) {
      n++;
      if (firstSeq === undefined) {
        const rec = parseLine(text);
        if (rec !== null) {
          firstSeq = rec.seq;
          firstLine = n;
        }
      }
      checker.feed(text, n, tag);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && n === 0) return { lines: 0, firstSeq: undefined, firstLine: 0 };
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
  return { lines: n, firstSeq, firstLine };
}
