// What `keyway policy` prints: one line per finding or request, every id and path as keyway
// recorded it (the audit log's path has no query), never a header, token or body.

import type { LoadedPolicy } from '../../policy/cedar/contract.ts';
import type { AuthorityItem } from '../../proofs/authority.ts';
import type { ProofRequest, ProofVerdict } from '../../proofs/judge.ts';
import type { LintFinding } from '../../proofs/lint.ts';
import type { RecordedRequest } from '../../proofs/recorded.ts';
import type { ReplayLine, ReplayReport } from '../../proofs/replay.ts';
import { authoritySummary, diffReportJson, testReportJson, verdictJson } from '../../proofs/report.ts';
import { type CommandIO, printJson } from '../io.ts';

export function printLint(io: CommandIO, loaded: LoadedPolicy | undefined, findings: readonly LintFinding[], json: boolean): void {
  if (json) return printJson(io, { hash: loaded?.hash ?? null, files: loaded?.files ?? null, findings });
  for (const f of findings) io.out(`${f.at}: ${f.severity}: ${f.policy === undefined ? '' : `${f.policy}: `}${f.message}`);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const which = loaded === undefined ? 'the policy does not load' : `policy ${loaded.hash}`;
  io.out(
    findings.length === 0
      ? `${which}: ${loaded?.files.length ?? 0} Cedar file(s), no problem found`
      : `${which}: ${errors} error(s), ${findings.length - errors} warning(s)`,
  );
}

export function printCheck(io: CommandIO, request: ProofRequest, v: ProofVerdict, hash: string, json: boolean): void {
  if (json)
    return printJson(io, {
      policy: hash,
      agent: request.agent,
      method: request.method,
      host: request.host,
      port: request.port,
      path: request.path,
      ...verdictJson(v),
    });
  const what = `${request.method} ${request.host}:${request.port}${request.path} for agent ${request.agent}${v.grant === undefined ? '' : ` on grant ${v.grant}`}`;
  io.out(`${v.outcome}: ${what}`);
  if (v.stage !== undefined) io.out(`refused at: ${v.stage} (${v.code})`);
  io.out(`deciding: ${v.deciding.length === 0 ? '(none)' : v.deciding.join(', ')}`);
  io.out(`why: ${v.reason}`);
  for (const need of v.needs) io.out(`then needs: ${need}`);
  io.out(`policy ${hash}`);
}

const requestText = (r: RecordedRequest) => `seq ${r.seq} ${r.ts} ${r.agent} ${r.grant ?? '-'} ${r.method} ${r.host}:${r.port}${r.path}`;
const afterText = (line: ReplayLine) =>
  `${line.after.outcome}${line.after.stage === undefined ? '' : ` at ${line.after.stage}`}${line.after.deciding.length === 0 ? '' : ` by ${line.after.deciding.join(', ')}`}`;

function printNotReplayable(io: CommandIO, report: ReplayReport): void {
  if (report.notReplayable.length === 0) return;
  io.out(`${report.notReplayable.length} request(s) not replayable:`);
  for (const n of report.notReplayable) io.out(`  ${requestText(n.request)}: ${n.why}`);
}

export function printTest(io: CommandIO, loaded: LoadedPolicy, report: ReplayReport, json: boolean): void {
  if (json) return printJson(io, testReportJson(loaded, report));
  io.out(`policy ${loaded.hash}: ${report.compared} recorded request(s) judged again, ${report.differing.length} verdict(s) differ`);
  for (const d of report.differing)
    io.out(`  ${requestText(d.request)}: recorded ${d.before}${d.beforeDeciding.length === 0 ? '' : ` (${d.beforeDeciding.join(', ')})`}, now ${afterText(d)}`);
  printNotReplayable(io, report);
  if (report.skipped > 0) io.out(`${report.skipped} request line(s) skipped: refused before the policy was asked, or failed at a stage the line does not say`);
}

export interface DiffPrint {
  readonly before: LoadedPolicy;
  readonly after: LoadedPolicy;
  readonly report: ReplayReport;
  readonly authority: readonly AuthorityItem[];
}

export function printDiff(io: CommandIO, d: DiffPrint, json: boolean): void {
  const summary = authoritySummary(d.authority);
  if (json) return printJson(io, diffReportJson(d.before, d.after, d.report, d.authority));
  io.out(
    `old ${d.before.hash} -> new ${d.after.hash}: ${d.report.compared} logged request(s) judged under both, ${d.report.differing.length} verdict(s) change`,
  );
  for (const line of d.report.differing) io.out(`  ${requestText(line.request)}: ${line.before} -> ${afterText(line)}`);
  printNotReplayable(io, d.report);
  io.out(summary === 'no authority added' ? 'no authority added' : `${summary}:`);
  for (const a of d.authority) io.out(`  ${a.kind === 'added' ? '+' : '?'} ${a.what}`);
}
