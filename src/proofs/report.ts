// The proofs' answers as JSON: what `keyway policy … --json` prints and the admin API returns (one
// shape for both doors). Ids, hosts, paths without their query, verdicts: nothing secret.

import type { LoadedPolicy } from '../policy/cedar/contract.ts';
import type { AuthorityItem } from './authority.ts';
import type { ProofVerdict } from './judge.ts';
import type { RecordedRequest } from './recorded.ts';
import type { ReplayReport } from './replay.ts';

export function verdictJson(v: ProofVerdict) {
  return { verdict: v.outcome, stage: v.stage ?? null, grant: v.grant ?? null, code: v.code ?? null, deciding: v.deciding, reason: v.reason, needs: v.needs };
}

export function requestJson(r: RecordedRequest) {
  return {
    seq: r.seq,
    ts: r.ts,
    agent: r.agent,
    grant: r.grant ?? null,
    method: r.method,
    host: r.host,
    port: r.port,
    path: r.path,
    policy: r.policyHash ?? null,
  };
}

function replayJson(report: ReplayReport, beforeName: 'recorded' | 'old') {
  return {
    compared: report.compared,
    skipped: report.skipped,
    differing: report.differing.map((d) => ({
      ...requestJson(d.request),
      [beforeName]: d.before,
      [`${beforeName}_deciding`]: d.beforeDeciding,
      ...verdictJson(d.after),
    })),
    not_replayable: report.notReplayable.map((n) => ({ ...requestJson(n.request), why: n.why })),
  };
}

export function testReportJson(loaded: LoadedPolicy, report: ReplayReport) {
  return { policy: loaded.hash, files: loaded.files, ...replayJson(report, 'recorded') };
}

export type AuthoritySummary = 'authority added' | 'no authority added' | 'cannot tell';

export function authoritySummary(items: readonly AuthorityItem[]): AuthoritySummary {
  return items.length === 0 ? 'no authority added' : items.some((a) => a.kind === 'added') ? 'authority added' : 'cannot tell';
}

export function diffReportJson(before: LoadedPolicy, after: LoadedPolicy, report: ReplayReport, authority: readonly AuthorityItem[]) {
  return {
    old: { policy: before.hash, files: before.files },
    new: { policy: after.hash, files: after.files },
    ...replayJson(report, 'old'),
    authority: { summary: authoritySummary(authority), items: authority },
  };
}
