import type { McpEndpoints } from '../../credentials/grant.ts';
import { ProxyError } from '../../errors/index.ts';
import { argsSha256 } from '../../mcp/args.ts';
import { mcpBodyProblem } from '../../mcp/body-reading.ts';
import { type JsonRpcId, type McpMessage, parseMcpBody } from '../../mcp/json-rpc.ts';
import { HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR, REFUSED, rpcErrorBody, type RpcRefusal } from '../../mcp/rpc-errors.ts';
import { type RevisionHeaders, revisionHeaderProblem } from '../../mcp/revision-headers.ts';
import type { ToolsListFilter } from '../../mcp/tools-list.ts';
import { pathReadings } from '../../policy/request-path.ts';
import { type AgentPolicy, evaluateMcp, policyDenied, type PolicyRequest, type Verdict } from '../../policy/rules.ts';
import { decide, namedPolicies, ruleDenied, type Decision } from '../../policy/cedar/decide.ts';
import { policyQuery } from '../policy-query.ts';
import { overrideMethods } from '../../policy/method-override.ts';
import { overridePaths } from '../../policy/path-override.ts';
import { countHeader } from '../headers.ts';
import { hasBody } from '../replay-body.ts';
import { boundRefusal, holdWhole } from '../body-hold.ts';
import type { Agent } from '../../credentials/agents.ts';
import { ancestorsNow } from './delegation.ts';
import type { HeadStage, McpExchange, StagedRequest } from './request.ts';

/**
 * A request on one of the grant's MCP endpoints (grants.ID.mcp): each JSON-RPC message it posts is
 * read (bounded by mcp.max_body, held whole and sent as read) and judged by the agent's MCP rules
 * (tools, args, mcp_methods): a refused tools/call is answered as a JSON-RPC error with its id, and
 * a batch with any refused message is refused whole (each request in it gets an error), so nothing
 * is smuggled behind an allowed call. A tool call that a rule sends to a person goes to the approval
 * stage next. tools/list answers are cut to the tools the agent may call (the response stage
 * mcp-tools-list). The GET event stream and the session's DELETE are judged as methods GET and
 * DELETE. A delegated agent's messages are judged as it and as each ancestor as it stands now (their
 * MCP rules, and Cedar's mcp_call with the ancestor as principal): refused if any refuses, naming the
 * ancestor; its tools/list shows only tools every one of them may call. After the rules on the HTTP
 * request and its purpose (and stage delegation); before limits and approval.
 */
export const mcp: HeadStage = {
  name: 'mcp',
  injected: true,
  run(request) {
    const exchange = request.mcp;
    if (exchange === undefined) return;
    refuseOverrides(request);
    const method = (request.req.method ?? 'GET').toUpperCase();
    // Only a POST carries messages: a body on anything else would reach the server unread.
    if (method !== 'POST' && hasBody(request.req)) {
      throw new ProxyError('bad_request', `a ${method} with a body is refused on an MCP endpoint: messages are POSTed, and read there`, {
        grant: request.grant!.id,
      });
    }
    if (method === 'POST') return judgePost(request, exchange, request.grant!.mcp!);
    judgeOne(request, { kind: 'request', id: undefined, method }, undefined);
    return undefined;
  },
};

/**
 * A method or path override header (X-HTTP-Method-Override, X-Original-URL and their kin) on an MCP
 * endpoint, or one naming an endpoint: refused, since a server honouring it would read messages
 * keyway judged as another method, or never read (MCP clients send none).
 */
function refuseOverrides(request: StagedRequest): void {
  const methods = overrideMethods(request.req.headers, request.query);
  const paths = overridePaths(request.req.headers);
  const named = typeof methods === 'string' || methods.length > 0 || typeof paths === 'string' || paths.length > 0;
  // With no override named, the stage runs because the path itself is an endpoint (stage access):
  // nothing to refuse, and no need to match the path again.
  if (!named) return;
  throw new ProxyError(
    'bad_request',
    'method and path override headers are refused on an MCP endpoint (and naming one): keyway judges each message at the path and method it sees',
    {
      grant: request.grant!.id,
    },
  );
}

/**
 * Whether `path` may reach one of these MCP endpoints, found as a lenient server routes it: Express
 * (the MCP SDK's app) folds case and ignores a trailing slash, others drop `;parameters` or a
 * `.json` suffix, and a `%2F` may be split or not. Read loosely, as a deny rule reads a path
 * (glob.ts), on either reading: a near spelling of an endpoint is judged as that endpoint (its
 * messages read and judged by the MCP rules), never passed on as plain HTTP with the credential.
 */
export function isMcpEndpoint(endpoints: McpEndpoints | undefined, path: string): boolean {
  if (endpoints === undefined) return false;
  const readings = pathReadings(path);
  if (readings === undefined) return false;
  // Loops, not some() with closures: this runs on every request of a grant with MCP endpoints.
  for (const parts of readings) for (const glob of endpoints.paths) if (glob.matchesLoosely(parts)) return true;
  return false;
}

async function judgePost(request: StagedRequest, exchange: McpExchange, endpoints: McpEndpoints): Promise<void> {
  const grant = request.grant!.id;
  // Held whole: what is judged is what goes upstream.
  const body = await holdWhole(
    request,
    endpoints.maxBody,
    boundRefusal(request, endpoints.maxBody, { why: 'an MCP message is read whole to judge it', bound: `grants.${grant}.mcp.max_body` }),
  );
  const { headers } = request.req;
  const unreadable = mcpBodyProblem(headers, countHeader(request.req.rawHeaders, 'content-type'), body);
  if (unreadable) throw unreadableMessage(request, unreadable);
  const parsed = parseMcpBody(body);
  if (!parsed.ok) {
    const code = /not JSON|not UTF-8|not closed|key is not/.test(parsed.reason) ? PARSE_ERROR : INVALID_REQUEST;
    const keyway = { code: 'bad_request', message: `keyway refused the MCP message: ${parsed.reason}` };
    const ids: JsonRpcId[] = parsed.ids.length > 0 ? parsed.ids : [null];
    request.draft.event.mcp = { method: 'invalid' };
    throw new ProxyError('bad_request', keyway.message, {
      grant,
      answer: {
        status: 400,
        body: rpcErrorBody(
          ids.map((id) => ({ id, code, keyway })),
          ids.length > 1,
        ),
      },
    });
  }
  const { messages, batch } = parsed;
  const mismatch = revisionHeaderProblem(revisionHeaders(request), messages, batch);
  if (mismatch) {
    const ids = messages.flatMap((m) => (m.kind === 'request' ? [m.id ?? null] : []));
    throw unreadableMessage(request, mismatch, { code: HEADER_MISMATCH, ids: ids.length > 0 ? ids : [null], batch });
  }
  request.draft.event.mcp = summary(messages);
  const judges = judgesOf(request);
  const judged = messages.filter((m) => m.kind !== 'response').map((m) => judgedMessage(request, judges, m, body.length));
  const refused = judged.filter((j) => !j.decision.allowed);
  if (refused.length > 0) throw refusal(request, judged, refused, batch);
  const warned = judged.find((j) => j.verdict.outcome === 'warn');
  if (warned) {
    request.draft.event.policy_mode = 'warn';
    request.draft.event.rule = warned.verdict.rule;
  }
  const ids = judged.flatMap((j) => (j.message.kind === 'request' ? [j.message.id ?? null] : []));
  const asking = judged.filter((j) => j.verdict.approvalBy !== undefined);
  // Only a call that asks a person needs the key its yes is bound to: no hash for every other request.
  const key = asking.length > 0 ? argsSha256(messages.map((m) => [m.method ?? 'response', m.tool ?? null, m.args ?? null])) : undefined;
  exchange.call = { tools: asking.map((j) => j.message.tool ?? j.message.method ?? '').join(','), ids, batch, key };
  if (asking.length > 0) request.approvalRule = asking[0]!.verdict.approvalBy;
  const lists = messages.filter((m) => m.kind === 'request' && m.method === 'tools/list');
  // Every judge whose rules limit this grant's tools: the child's, and each ancestor's.
  const limiting = judges.flatMap((j) => (j.policy?.rules.some((r) => r.grant === grant && r.mcp) ? [j.policy] : []));
  if (lists.length > 0 && limiting.length > 0) {
    const base = policyBase(request, body.length);
    const event = request.draft.event;
    exchange.list = {
      ids: new Set(lists.map((m) => m.id ?? null)),
      visible: (tool) => limiting.every((policy) => evaluateMcp(policy, { ...base, mcp: { method: 'tools/call', tool, argsAny: true } }).allowed),
      onHidden: (names) => {
        if (event.mcp) event.mcp.hidden = (event.mcp.hidden ?? 0) + names.length;
      },
    } satisfies ToolsListFilter;
  }
}

/**
 * A POST keyway will not read as the server would: refused whole, with a JSON-RPC error (id null:
 * no id read from such a body can be trusted) whose data names mcp_unreadable and why.
 */
function unreadableMessage(
  request: StagedRequest,
  reason: string,
  as: { code: number; ids: JsonRpcId[]; batch: boolean } = { code: INVALID_REQUEST, ids: [null], batch: false },
): ProxyError {
  const keyway = { code: 'mcp_unreadable', message: `keyway refused the MCP message: ${reason}` };
  request.draft.event.mcp = { method: 'unreadable' };
  return new ProxyError('mcp_unreadable', keyway.message, {
    grant: request.grant!.id,
    hint:
      as.code === HEADER_MISMATCH
        ? 'send MCP-Protocol-Version, Mcp-Method and Mcp-Name as they mirror the body, as MCP clients do'
        : 'send the message as application/json in UTF-8, with no Content-Encoding, as MCP clients do',
    answer: {
      status: 400,
      body: rpcErrorBody(
        as.ids.map((id) => ({ id, code: as.code, keyway })),
        as.batch,
      ),
    },
  });
}

/** MCP-Protocol-Version, Mcp-Method and Mcp-Name as sent, and how many times each came. */
function revisionHeaders(request: StagedRequest): RevisionHeaders {
  const { headers, rawHeaders } = request.req;
  const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value)?.replace(/^[ \t]+|[ \t]+$/g, '');
  return {
    version: one(headers['mcp-protocol-version']),
    method: one(headers['mcp-method']),
    name: one(headers['mcp-name']),
    counts: {
      version: countHeader(rawHeaders, 'mcp-protocol-version'),
      method: countHeader(rawHeaders, 'mcp-method'),
      name: countHeader(rawHeaders, 'mcp-name'),
    },
  };
}

/** A GET (the event stream) or DELETE (the session's end) on the endpoint, judged as that method. */
function judgeOne(request: StagedRequest, message: McpMessage, bytes: number | undefined): void {
  request.draft.event.mcp = { method: message.method! };
  const { decision, by } = judgedMessage(request, judgesOf(request), message, bytes ?? 0);
  if (!decision.allowed) throw asAncestor(refusalOf(decision, { grant: request.grant!.id, method: request.req.method ?? 'GET', path: request.path }), by);
}

/** The 403 for one refused message: a Cedar forbid's rule_denied, or a YAML rule's policy_denied. */
function refusalOf(decision: Decision, at: { grant: string; method: string; path: string }): ProxyError {
  return decision.code === 'rule_denied' ? ruleDenied(decision, at) : policyDenied(decision.verdict, at);
}

function policyBase(request: StagedRequest, bytes: number): PolicyRequest {
  return {
    grant: request.grant!.id,
    method: request.req.method ?? 'POST',
    path: request.path,
    source: request.conn.client,
    bodyBytes: bytes,
    now: request.conn.decisions.now(),
    mcpEndpoint: true,
  };
}

/**
 * The agent's YAML rules that stage access judged the request by, whose compiled text is in the
 * line's hash: not the agent as it stands now (a reload may have come while the body was read).
 */
function rulesOf(request: StagedRequest): AgentPolicy | undefined {
  return request.policy !== undefined ? request.rules : request.conn.agent.policy;
}

/** Who judges a message: the agent itself (by), then each ancestor, nearest first (by its id). */
interface Judge {
  readonly policy: AgentPolicy | undefined;
  /** Cedar's principal for it. */
  readonly as: Pick<Agent, 'id' | 'parents'>;
  /** undefined: the agent itself. */
  readonly by: string | undefined;
}

interface Judged {
  readonly message: McpMessage;
  /** The verdict that counts: a refusal's, else one asking a person, else one that warns, else the agent's own. */
  readonly verdict: Verdict;
  readonly decision: Decision;
  /** The ancestor whose judgement this is; undefined: the agent's own. */
  readonly by: string | undefined;
}

/** The agent's own rules (stage access's), then its ancestors' as they stand now (a root agent has none). */
function judgesOf(request: StagedRequest): Judge[] {
  const own: Judge = { policy: rulesOf(request), as: request.conn.agent, by: undefined };
  return [own, ...ancestorsNow(request).map((a): Judge => ({ policy: a.policy, as: a, by: a.id }))];
}

/** One message judged by each judge in turn: the first refusal stands; otherwise the first that asks a person, or warns. */
function judgedMessage(request: StagedRequest, judges: readonly Judge[], message: McpMessage, bytes: number): Judged {
  const all = judges.map((judge) => ({ judge, decision: decisionOf(request, judge, message, bytes) }));
  const pick =
    all.find((j) => !j.decision.allowed) ??
    all.find((j) => j.decision.verdict.approvalBy !== undefined) ??
    all.find((j) => j.decision.verdict.outcome === 'warn') ??
    all[0]!;
  return { message, verdict: pick.decision.verdict, decision: pick.decision, by: pick.judge.by };
}

/**
 * One message judged by one judge: its MCP rules, and for a tools/call the Cedar files too (action
 * mcp_call, context.mcp_tool, the judge as principal), combined by decide.ts. Other methods were
 * judged as the request.
 */
function decisionOf(request: StagedRequest, judge: Judge, message: McpMessage, bytes: number): Decision {
  const { policy } = judge;
  const base = policyBase(request, bytes);
  const yaml: Verdict = policy
    ? evaluateMcp(policy, { ...base, mcp: { method: message.method!, tool: message.tool, args: message.args } })
    : { allowed: true, enforced: true, outcome: 'allow', rule: undefined, reason: 'the agent has no rules', maxBodyBytes: undefined };
  if (message.method !== 'tools/call') return decide(yaml, policy, undefined, () => policyQuery(request, base, 'mcp_call', undefined, judge.as));
  // The policy stage access took, whose hash is on the line: not the one in force now (a reload may
  // have come while the body was read).
  return decide(yaml, policy, request.policy ?? request.conn.decisions.policy(), () => policyQuery(request, base, 'mcp_call', message.tool, judge.as));
}

/** A refusal by an ancestor, naming it: the child's own rules allowed the message. */
function asAncestor(error: ProxyError, by: string | undefined): ProxyError {
  if (by === undefined) return error;
  return new ProxyError(error.code, `agent "${by}", a parent of this agent: ${error.message}`, {
    grant: error.grant,
    hint: 'a delegated agent may call only what every agent above it may; ask whoever runs keyway',
  });
}

/**
 * The refusal: each request of the message (or batch) answered as a JSON-RPC error, the refused
 * ones with the rule's reason, the others saying they were not sent. Only notifications: the
 * plain 403 (JSON-RPC has nothing to answer a notification with).
 */
function refusal(request: StagedRequest, judged: readonly Judged[], refused: readonly Judged[], batch: boolean): ProxyError {
  const grant = request.grant!.id;
  const first = refused[0]!;
  const what = (m: McpMessage) => (m.method === 'tools/call' ? `tools/call ${m.tool}` : (m.method ?? 'a message'));
  const denied = (j: Judged) => asAncestor(refusalOf(j.decision, { grant, method: 'POST', path: `${request.path} ${what(j.message)}` }), j.by);
  const main = denied(first);
  request.draft.event.rule = first.decision.code === 'rule_denied' ? namedPolicies(first.decision.deciding) : first.verdict.rule;
  const answers: RpcRefusal[] = judged
    .filter((j) => j.message.kind === 'request')
    .map((j) => {
      const own = refused.includes(j) ? denied(j) : undefined;
      const message = own?.message ?? `not sent: ${what(first.message)} in the same batch was refused`;
      return { id: j.message.id ?? null, code: REFUSED, keyway: { code: own?.code ?? main.code, message } };
    });
  if (answers.length === 0) return main;
  return new ProxyError(main.code, main.message, { grant, hint: main.hint, answer: { status: 200, body: rpcErrorBody(answers, batch) } });
}

/** The audit line's `mcp`: the method (or the batch's, comma-separated), and the first tools/call's tool and argument hash. */
function summary(messages: readonly McpMessage[]): NonNullable<StagedRequest['draft']['event']['mcp']> {
  const call = messages.find((m) => m.method === 'tools/call');
  const methods = messages.map((m) => m.method ?? 'response').join(',');
  return {
    method: methods.length <= 256 ? methods : `${methods.slice(0, 255)}…`,
    ...(call ? { tool: call.tool, args_sha256: argsSha256(call.args ?? {}) } : {}),
    ...(messages.length > 1 ? { calls: messages.filter((m) => m.method === 'tools/call').length } : {}),
  };
}
