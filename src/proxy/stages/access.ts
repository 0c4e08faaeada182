import { ProxyError } from '../../errors/index.ts';
import type { RequestGuard } from '../../credentials/grant.ts';
import { checkLease } from '../../policy/leases.ts';
import { overrideMethods } from '../../policy/method-override.ts';
import { overridePaths } from '../../policy/path-override.ts';
import { evaluate, policyDenied, type PolicyRequest, type Verdict } from '../../policy/rules.ts';
import { decide, namedPolicies, ruleDenied } from '../../policy/cedar/decide.ts';
import { policyQuery } from '../policy-query.ts';
import type { ClientRequest } from '../client-message.ts';
import { HOLD_LIMIT, holdWhole } from '../body-hold.ts';
import { hasBody } from '../replay-body.ts';
import type { HeadStage, StagedRequest } from './request.ts';
import { isMcpEndpoint } from './mcp.ts';

/**
 * May this agent use this grant for this request now? The lease (second clock), then the agent's
 * rules, judged for the request's method and path and for every method or path an override header
 * names (method-override.ts, path-override.ts). A refusal names the rule; warn mode lets the
 * request through and says so in the audit line and the log. A rule's max_body on a body of
 * undeclared size is checked by holding the body (body-hold.ts), bounded.
 */
export const access: HeadStage = {
  name: 'access',
  injected: true,
  // Returns a promise only when it must wait (a lease to store, a body to hold): most requests
  // pass without one.
  run(request) {
    const { agent, decisions } = request.conn;
    const grant = request.grant!;
    request.draft.event.grant = grant.id;
    // A connection outlives the identity token it signed in with only until the token's exp.
    if (agent.identityExpiresAt !== undefined && agent.identityExpiresAt <= Date.now()) throw identityExpired();
    const now = decisions.now();
    const lease = checkLease(agent, grant.id, decisions.leases.get(agent.id, grant.id), now);
    if (!lease.ok) throw lease.error;
    if (lease.startNew) return decisions.leases.start(lease.startNew).then(() => judge(request, now));
    return judge(request, now);
  },
};

/** An agent without rules: every grant it holds is open (rules.ts says so of a grant with none). */
const OPEN: Verdict = Object.freeze({
  allowed: true,
  enforced: true,
  outcome: 'allow',
  rule: undefined,
  reason: 'the agent has no rules',
  maxBodyBytes: undefined,
});

/** The agent's rules and the Cedar files (decide.ts); a body held to check max_body lands in request.heldBody (body-hold.ts). */
function judge(request: StagedRequest, now: Date): void | Promise<void> {
  const { conn, req, draft } = request;
  const { agent, records } = conn;
  const grant = request.grant!;
  const policy = agent.policy;
  // Allocated only on an MCP endpoint: stage mcp fills it in.
  if (isMcpEndpoint(grant.mcp, request.path) || overridesMcpEndpoint(request)) request.mcp = { call: undefined, list: undefined };
  // Its type's own refusal, before the rules (a GitHub App's /app endpoints).
  if (grant.guard !== undefined) refuseByGuard(request, grant.guard);
  // The policy that judges this request: its hash goes on the line, whatever a reload does meanwhile.
  const loaded = conn.decisions.policy();
  request.policy = loaded;
  request.rules = policy;
  draft.event.policy = loaded.hash;
  if (!policy && !loaded.hasCedarFiles) return;

  const asked = requestsToJudge(req, request, now);
  const base = asked[0]!.request;
  const verdicts = asked.map(({ request: judged, by }) => {
    const decision = decide(policy ? evaluate(policy, judged) : OPEN, policy, loaded, () => policyQuery(request, judged, 'request'));
    return { request: judged, by, verdict: decision.verdict, decision };
  });
  const refused = verdicts.find((v) => !v.decision.allowed);
  const first = verdicts[0]!.verdict;
  draft.event.rule =
    refused?.decision.code === 'rule_denied'
      ? namedPolicies(refused.decision.deciding)
      : (refused?.verdict ?? verdicts.find((v) => v.verdict.outcome === 'warn')?.verdict ?? first).rule;
  if (draft.event.rule === undefined) delete draft.event.rule;
  if (refused?.decision.code === 'rule_denied') throw ruleDenied(refused.decision, { ...refused.request, namedBy: refused.by });
  if (refused) throw policyDenied(refused.verdict, { ...refused.request, namedBy: refused.by });
  if (!policy) return;
  request.purposeRule = verdicts.find((v) => v.verdict.purposeRequiredBy !== undefined)?.verdict.purposeRequiredBy;
  // A method or path an override header names that needs a person's yes needs it for the request.
  request.approvalRule = verdicts.find((v) => v.verdict.approvalBy !== undefined)?.verdict.approvalBy;
  const warned = verdicts.find((v) => v.verdict.outcome === 'warn');
  if (warned) {
    draft.event.policy_mode = 'warn';
    records.logger.warn({ agent: agent.id, grant: grant.id, rule: warned.verdict.rule }, 'a rule in warn mode would refuse this request');
  }
  const caps = verdicts
    .map((v) => v.verdict)
    .filter((v) => v.enforced && v.maxBodyBytes !== undefined)
    .map((v) => v.maxBodyBytes!);
  if (caps.length === 0 || base.bodyBytes !== undefined) return;
  return holdUnderCap(request, Math.min(...caps), (seen) =>
    verdicts.map((v) => ({ ...v, verdict: evaluate(policy, { ...v.request, bodyBytes: seen }) })).find((v) => !v.verdict.allowed),
  );
}

function refuseByGuard(request: StagedRequest, guard: RequestGuard): void {
  const refused = guard({ grantId: request.grant!.id, host: request.conn.target.host.toLowerCase(), path: request.path, headers: request.req.headers });
  if (refused === undefined) return;
  request.draft.event.rule = refused.rule;
  throw refused.error;
}

/** A path override header (X-Original-URL and its kin) naming one of the grant's MCP endpoints: judged as one (stage mcp refuses it). */
function overridesMcpEndpoint(request: StagedRequest): boolean {
  const endpoints = request.grant!.mcp;
  if (endpoints === undefined) return false;
  const paths = overridePaths(request.req.headers);
  return typeof paths !== 'string' && paths.some((p) => isMcpEndpoint(endpoints, p.path));
}

export interface Judged {
  request: PolicyRequest;
  /** The override header(s) that named this method or path; undefined for the request itself. */
  by: string | undefined;
}

/** The request as sent, then once for each method and path that an override header names (stage delegation asks each ancestor about the same). */
export function requestsToJudge(req: ClientRequest, request: StagedRequest, now: Date): Judged[] {
  const { draft } = request;
  const grant = request.grant!.id;
  const methods = overrideMethods(req.headers, request.query);
  if (typeof methods === 'string') throw new ProxyError('bad_request', methods, { grant });
  const paths = overridePaths(req.headers);
  if (typeof paths === 'string') throw new ProxyError('bad_request', paths, { grant });
  if (methods.length > 0) draft.event.method_override = methods.map((n) => n.method).join(',');
  if (paths.length > 0) draft.event.path_override = paths.map((p) => p.path).join(',');
  const length = Number(req.headers['content-length']);
  const endpoints = request.grant!.mcp;
  const base: PolicyRequest = {
    grant,
    method: req.method ?? 'GET',
    path: request.path,
    mcpEndpoint: isMcpEndpoint(endpoints, request.path),
    source: request.conn.client,
    bodyBytes: !hasBody(req) ? 0 : Number.isFinite(length) ? length : undefined,
    now,
  };
  // Most requests name nothing else: the request itself, without the arrays that pair every method
  // with every path.
  if (methods.length === 0 && paths.length === 0) return [{ request: base, by: undefined }];
  const allMethods = [{ method: base.method, by: undefined as string | undefined }, ...methods];
  const allPaths = [{ path: base.path, by: undefined as string | undefined }, ...paths];
  return allPaths.flatMap((p) =>
    allMethods.map((m) => ({
      request: { ...base, method: m.method, path: p.path, mcpEndpoint: isMcpEndpoint(endpoints, p.path) },
      by: [m.by, p.by].filter(Boolean).join(' and ') || undefined,
    })),
  );
}

type Recheck = (seen: number) => (Judged & { verdict: Verdict }) | undefined;

/**
 * A rule caps the body but its size was not declared (chunked): hold it, up to the cap, before
 * anything (head, credential, body) goes upstream. Past the cap, the rules are asked again with the
 * bytes seen, and their refusal names the rule. Memory is bounded by the cap, and the cap by
 * HOLD_LIMIT: above it, a body of undeclared size is refused and must declare Content-Length.
 */
async function holdUnderCap(request: StagedRequest, cap: number, recheck: Recheck): Promise<void> {
  const refuse = (seen: number, why: string) => {
    const denied = recheck(seen);
    const rule = denied?.verdict.rule ?? 'a rule';
    return new ProxyError('policy_denied', `${rule} caps the body at ${cap} bytes: ${why}`, {
      grant: denied?.request.grant,
      hint: 'the agent rules in the keyway config decide this; ask whoever runs keyway',
    });
  };
  if (cap > HOLD_LIMIT) {
    throw refuse(Number.MAX_SAFE_INTEGER, `a body of undeclared size is held to check it, and keyway holds at most ${HOLD_LIMIT} bytes; send Content-Length`);
  }
  await holdWhole(request, cap, {
    over: (seen) => {
      const denied = recheck(seen);
      if (denied) return policyDenied(denied.verdict, { ...denied.request, namedBy: denied.by });
      return refuse(seen, `the body passed ${cap} bytes`);
    },
    full: () =>
      new ProxyError('rate_limited', "keyway's memory for held request bodies is in use (proxy.max_replay_memory_per_agent or proxy.max_replay_memory)", {
        grant: recheck(0)?.request.grant,
        hint: 'send Content-Length (a declared size is checked without holding the body), or retry',
        retryAfter: 1,
      }),
  });
}

function identityExpired(): ProxyError {
  return new ProxyError('proxy_auth_required', 'the identity token this connection signed in with has expired', {
    hint: 'open a new connection with a fresh token as the proxy password',
  });
}
