// `keyway audit verify`: walk the chain line by line, then hold its end against the head file.
// The walk is over a list of files so rotated logs (audit.jsonl.1, audit.jsonl, ...) can be checked
// as one chain later by passing more paths; today the public entry point passes one.

import { KeywayError } from '../errors/index.ts';
import { ChainChecker } from './chain.ts';
import type { AuditProblem } from './chain.ts';
import { readHead } from './head.ts';
import type { HeadState } from './head.ts';
import { readLines } from './lines.ts';

export type { AuditProblem } from './chain.ts';

export interface VerifyOptions {
  path: string;
  headPath: string;
  headKey: Buffer;
}

export interface VerifyResult {
  ok: boolean;
  /** Lines read, including unparseable ones. */
  lines: number;
  problems: AuditProblem[];
}

export async function verifyAudit(opts: VerifyOptions): Promise<VerifyResult> {
  return verifyChain({ files: [opts.path], headPath: opts.headPath, headKey: opts.headKey });
}

/** Verify files that together hold one chain, oldest first. A missing file counts as empty. */
async function verifyChain(opts: { files: string[]; headPath: string; headKey: Buffer }): Promise<VerifyResult> {
  const head = await loadHead(opts.headPath, opts.headKey);
  const trusted = head.kind === 'ok' ? head.head : undefined;
  const checker = new ChainChecker(trusted === undefined ? {} : { watch: trusted });
  const tagFiles = opts.files.length > 1;
  let lines = 0;
  let lastFileLines = 0;
  for (const file of opts.files) {
    lastFileLines = await feedFile(checker, file, tagFiles ? file : undefined);
    lines += lastFileLines;
  }
  const end = checker.last;
  const tailLine = lastFileLines;
  if (head.kind === 'missing') {
    if (end.seq > 0) checker.report(0, 'head file missing: a removed tail cannot be ruled out');
  } else if (head.kind === 'unreadable') {
    checker.report(0, 'head file unreadable');
  } else if (head.kind === 'bad_mac') {
    checker.report(0, 'head file tampered: its MAC does not match (or the head key is not the one that wrote it)');
  } else if (head.head.seq > end.seq) {
    const gone = head.head.seq - end.seq;
    checker.report(tailLine, `tail removed: the head file records seq ${head.head.seq} but the log ends at seq ${end.seq} (${gone} line(s) missing)`);
  } else if (!checker.watchFound) {
    // The file may run ahead of the head (lines appended after it was written), but the line the
    // head names must be on the chain exactly.
    checker.report(tailLine, `the head file's seq ${head.head.seq} and hash are not on the chain: lines were replaced`);
  }
  const problems = checker.problems;
  return { ok: problems.length === 0, lines, problems };
}

async function loadHead(path: string, key: Buffer): Promise<HeadState> {
  try {
    return await readHead(path, key);
  } catch (err) {
    throw new KeywayError('audit_invalid', `audit head file ${path} cannot be read`, { cause: err });
  }
}

/** Feed every line of one file to the checker; returns how many lines it had. */
async function feedFile(checker: ChainChecker, path: string, tag: string | undefined): Promise<number> {
  let n = 0;
  try {
    for await (const text of readLines(path)) {
      n++;
      checker.feed(text, n, tag);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && n === 0) return 0;
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
  return n;
}
