// Recorded requests judged again: under a candidate policy against what the log recorded (`policy
// test`), or under two policies against each other (`policy diff`). A line is judged only when the
// log holds every fact the policies that can apply to it read: the audit keeps no query and no body,
// so a policy (or a YAML rule) reading them makes its lines "not replayable", never guessed.

import { type AuditFilter, auditDatabaseOf, linesPerRequest, readAudit, readAuditTable } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { keywayPaths } from '../paths.ts';
import { type Candidate, judgeRequest, type ProofVerdict } from './judge.ts';
import { type RecordedRequest, recordedRequest } from './recorded.ts';
import { NOT_RECORDED, type PolicyScope, scopeCovers } from './scope.ts';

export interface Judged {
  readonly candidate: Candidate;
  readonly scopes: readonly PolicyScope[];
}

export interface ReplayLine {
  readonly request: RecordedRequest;
  /** What was recorded (test) or what the old policy says (diff). */
  readonly before: 'allow' | 'deny' | 'pass';
  readonly beforeDeciding: readonly string[];
  readonly after: ProofVerdict;
}

export interface NotReplayable {
  readonly request: RecordedRequest;
  readonly why: string;
}

export interface ReplayReport {
  /** Lines that state a policy verdict and were judged again. */
  readonly compared: number;
  /** Request lines that state no policy verdict (refused before the policy was asked, failed at an unknown stage). */
  readonly skipped: number;
  readonly differing: ReplayLine[];
  readonly notReplayable: NotReplayable[];
}

/** The request lines of the log that match the filter, oldest first (the file, or the table with audit.sink: postgres). */
export async function* loggedRequests(config: Config, env: NodeJS.ProcessEnv, filter: AuditFilter): AsyncGenerator<RecordedRequest | undefined> {
  const db = auditDatabaseOf(config, env);
  const lines = db === null ? readAudit(keywayPaths(config).audit, filter) : linesPerRequest(readAuditTable(db, filter));
  for await (const line of lines) {
    if (line.decision !== 'inject' && line.decision !== 'deny' && line.decision !== 'error') continue;
    if (line.agent === null || line.method === null) continue;
    yield recordedRequest(line);
  }
}

/** Why the candidate cannot judge this line from the log alone; undefined when it can. */
export function notReplayable(judged: Judged, request: RecordedRequest): string | undefined {
  if (request.pathCut) return 'the path was recorded cut (over 1 KiB)';
  if (request.mcp !== undefined && request.mcp.calls > 1) return `a batch of ${request.mcp.calls} tools/call: the log keeps the first one's tool only`;
  const grant = request.grant;
  const reading = judged.scopes.filter((s) => (grant === undefined || scopeCovers(s, request.agent, grant)) && NOT_RECORDED.some((a) => s.reads.has(a)));
  if (reading.length > 0) {
    const attrs = NOT_RECORDED.filter((a) => reading.some((s) => s.reads.has(a)));
    return `${reading.map((s) => s.id).join(', ')} read${reading.length === 1 ? 's' : ''} ${attrs.join(' and ')}, which the audit log does not keep`;
  }
  const rules = judged.candidate.config.agents[request.agent]?.rules ?? [];
  const bodyRules = rules
    .map((rule, i) => ({ rule, i }))
    .filter(
      ({ rule }) => (grant === undefined || rule.grant === grant) && (rule.max_body !== undefined || (request.mcp !== undefined && rule.args !== undefined)),
    );
  if (bodyRules.length > 0)
    return `${bodyRules.map(({ i }) => `yaml:agents.${request.agent}.rules[${i}]`).join(', ')} read the body (max_body or MCP args), which the audit log does not keep`;
  return undefined;
}

export function judgeRecorded(candidate: Candidate, request: RecordedRequest): ProofVerdict {
  return judgeRequest(candidate, {
    agent: request.agent,
    // The grant the line names, as X-Keyway-Grant would: one that is gone since is not named, and the host is routed afresh.
    grant: request.grant !== undefined && candidate.grantIds.has(request.grant) ? request.grant : undefined,
    method: request.method,
    host: request.host,
    port: request.port,
    path: request.path,
    query: '',
    bodySize: undefined,
    time: new Date(request.ts),
    sourceIp: request.sourceIp,
    mcp: request.mcp,
    overrideMethods: request.overrideMethods,
    overridePaths: request.overridePaths,
    signals: request.signals,
  });
}

/** `policy test`: the lines whose verdict under the candidate differs from the one recorded. */
export async function replayAgainstLog(judged: Judged, requests: AsyncIterable<RecordedRequest | undefined>): Promise<ReplayReport> {
  return replay(requests, (request) => {
    const why = notReplayable(judged, request);
    if (why !== undefined) return why;
    const after = judgeRecorded(judged.candidate, request);
    const before = request.allowed ? 'allow' : 'deny';
    return after.outcome === before ? undefined : { request, before, beforeDeciding: request.rule === undefined ? [] : [request.rule], after };
  });
}

/** `policy diff`: the lines whose verdict under `next` differs from their verdict under `previous`. */
export async function replayBetween(previous: Judged, next: Judged, requests: AsyncIterable<RecordedRequest | undefined>): Promise<ReplayReport> {
  return replay(requests, (request) => {
    const why = notReplayable(previous, request) ?? notReplayable(next, request);
    if (why !== undefined) return why;
    const before = judgeRecorded(previous.candidate, request);
    const after = judgeRecorded(next.candidate, request);
    return after.outcome === before.outcome ? undefined : { request, before: before.outcome, beforeDeciding: before.deciding, after };
  });
}

async function replay(
  requests: AsyncIterable<RecordedRequest | undefined>,
  judge: (request: RecordedRequest) => ReplayLine | string | undefined,
): Promise<ReplayReport> {
  let compared = 0;
  let skipped = 0;
  const differing: ReplayLine[] = [];
  const unreplayable: NotReplayable[] = [];
  for await (const request of requests) {
    if (request === undefined) {
      skipped++;
      continue;
    }
    const answer = judge(request);
    if (typeof answer === 'string') {
      unreplayable.push({ request, why: answer });
      continue;
    }
    compared++;
    if (answer !== undefined) differing.push(answer);
  }
  return { compared, skipped, differing, notReplayable: unreplayable };
}
