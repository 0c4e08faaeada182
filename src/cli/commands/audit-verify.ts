// `keyway audit verify`'s report for the audit file: intact or the problems found, and what rotation
// pruned. A log that rotation pruned is intact (nothing was changed behind keyway's back) but not
// whole: the report names every range deleted, so "intact" never hides lost lines.

import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { chainFiles } from '../../audit/chain-files.ts';
import type { CrashArtifact, PrunedReport, VerifyResult } from '../../audit/index.ts';
import { formatDuration } from '../../config/duration.ts';
import { printJson, type CommandIO } from '../io.ts';
import { formatUptime } from '../running-status.ts';

export function reportFile(io: CommandIO, result: VerifyResult, json: boolean): number {
  if (json) {
    printJson(io, result);
    return result.ok ? 0 : 1;
  }
  const pruned = result.pruned;
  if (result.ok) {
    const files = result.files === undefined ? '' : ` in ${result.files.length} files`;
    io.out(`audit log intact: ${result.lines} lines${files}, chain and head verified${pruned === undefined ? '' : `; ${prunedSummary(pruned)}:`}`);
  } else {
    for (const p of result.problems) io.out(`${p.file === undefined ? '' : `${p.file}: `}line ${p.line}: ${p.reason}`);
    if (pruned !== undefined) io.out(`${prunedSummary(pruned)}:`);
  }
  if (pruned !== undefined) {
    for (const line of prunedLines(pruned)) io.out(`  ${line}`);
    if (pruned.early > 0) {
      io.out(
        `warning: ${pruned.early} range(s) pruned sooner than audit.min_retention (${formatDuration(pruned.min_retention_ms)}) after their newest line was written`,
      );
    }
  }
  if (result.unanswered !== undefined) {
    io.out(`${result.unanswered} request(s) recorded as sent with no outcome line: in flight, or keyway was stopped while serving them`);
  }
  for (const artifact of result.crash_artifacts ?? []) io.out(crashArtifactLine(artifact));
  if (result.unvouched !== undefined) {
    io.out(
      `${result.unvouched} line(s) after the head file's: written since keyway last recorded its head (in flight, or before a kill); a line removed from among them would not show`,
    );
  }
  if (!result.ok) io.err(`audit log verification failed: ${result.problems.length} problem(s)`);
  return result.ok ? 0 : 1;
}

/** A crash artifact is reported, never a failure: what it is, and where. */
function crashArtifactLine(a: CrashArtifact): string {
  const where = `${a.file === undefined ? '' : `${a.file}: `}line ${a.line}`;
  if (a.kind === 'torn') {
    return `crash artifact: ${where}, offset ${a.offset}: ${a.bytes} byte(s) with no newline after them (an append cut short by a crash, or one under way); keyway keeps them aside when it next opens the log`;
  }
  const kept = a.kept_file === 'matches' ? `kept aside in ${a.kept} (its bytes match)` : `recorded as kept aside in ${a.kept}, which is no longer there`;
  return `crash artifact: ${where} (seq ${a.seq}) recovered a line cut short by a crash: ${a.bytes} byte(s) at offset ${a.offset}, ${kept}`;
}

function prunedSummary(p: PrunedReport): string {
  const count = p.ranges.length + (p.unrecorded === undefined ? 0 : 1);
  return `${count} range(s) pruned by rotation (seq 1-${p.lines}, ${p.lines} line(s))`;
}

function prunedLines(p: PrunedReport): string[] {
  const out: string[] = [];
  if (p.unrecorded !== undefined) {
    out.push(`seq ${p.unrecorded.first_seq}-${p.unrecorded.last_seq}: pruned by an earlier keyway (when and how many bytes were not recorded)`);
  }
  for (const r of p.ranges) {
    const when = r.prunings > 1 ? `${r.prunings} prunings, the last at ${r.pruned_at}` : `pruned ${r.pruned_at}`;
    const span = r.first_ts !== null && r.last_ts !== null ? `, lines from ${r.first_ts} to ${r.last_ts}` : '';
    const early = r.early ? ` (sooner than audit.min_retention ${formatDuration(p.min_retention_ms)})` : '';
    out.push(
      `seq ${r.first_seq}-${r.last_seq}: ${when}, ${r.files} file(s), ${r.bytes} bytes${span}; its newest line was ${formatUptime(Math.floor(r.age_ms / 1000))} old${early}`,
    );
  }
  return out;
}

/**
 * Why there is nothing to verify at `path` (the live audit file), or undefined: a folder that is not
 * there, or one with no audit file in it (a mistyped --home or --dir). Said, and exit 1: "intact: 0
 * lines" would pass a check that looked at the wrong place.
 */
export async function missingAuditLog(path: string): Promise<string | undefined> {
  const dir = dirname(path);
  if (!existsSync(dir)) return `no audit log in ${dir}: no such folder (check --home, KEYWAY_HOME or --dir)`;
  const files = (await chainFiles(path)).filter((file) => existsSync(file));
  return files.length === 0 ? `no audit log in ${dir}: no ${basename(path)} there (check --home, KEYWAY_HOME or --dir)` : undefined;
}

/** An empty log verified: refused unless --allow-empty (a fresh home, on purpose). */
export function emptyAuditLog(lines: number, ok: boolean, allowEmpty: boolean, where: string): string | undefined {
  return ok && lines === 0 && !allowEmpty ? `the audit log in ${where} has no lines: nothing was verified (--allow-empty accepts an empty log)` : undefined;
}
