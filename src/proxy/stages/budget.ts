import { ProxyError } from '../../errors/index.ts';
import { limitOf, unitOf } from '../../spend/core/budgets.ts';
import type { BudgetStanding, BudgetVerdict, SpendScope } from '../../spend/core/ledger.ts';
import { ModelExchange } from './model-exchange.ts';
import { overrideMethods } from '../../policy/method-override.ts';
import { overridePaths } from '../../policy/path-override.ts';
import { type ModelApiHint, type ModelRoute, modelRoute, protobufAnswer, reshapedAnswer, socketRoute } from '../../spend/core/meters/routes.ts';
import type { HeadStage, StagedRequest } from './request.ts';
import { unmeterable } from '../unmeterable.ts';
import { isWebSocketHandshake } from '../websocket-handshake.ts';

/** How long a request over an `over: approve` budget waits for a person (a rule's default wait). */
const BUDGET_APPROVAL_WAIT_MS = 120_000;

/**
 * Model spend (config budgets:, issue 63): after the limits (a request over its rate spends
 * nothing), before the approval stage (an `over: approve` budget hands it a person's yes to wait
 * for) and the credential (a refused request costs no refresh). A request on model traffic is
 * marked for metering (its answer's usage is read on its way to the agent: the exchange's close
 * counts it); under a budget it goes on only while every budget on it is under its limit.
 *
 * What is admitted under a budget: a route keyway meters (spend/core/meters/routes.ts) or one that costs
 * nothing (reads, token counting, a vendor CLI's listed telemetry), judged as every method and path
 * the request names (override headers), with an answer in the JSON or SSE the meters read (no gRPC
 * or protobuf: protobufAnswer), and on a Google front only with the query the meters read
 * (reshapedAnswer). Anything else on a model host (batches, audio, gRPC, a path nobody listed, a
 * field mask) is refused while a budget applies (`budget_unmeterable`): it would spend uncounted.
 * Returns a promise only when a worker asks its primary for the budgets' standing.
 */
export const budget: HeadStage = {
  name: 'budget',
  injected: true,
  run(request) {
    const grant = request.grant!;
    // A WebSocket's handshake is a GET, but what it opens is judged as the requests it carries: a
    // Responses socket (codex) is metered message by message; any other socket on a model API is
    // one keyway cannot meter (spend/core/meters/routes.ts).
    const conn = request.conn;
    const host = conn.target.host;
    const route = isWebSocketHandshake(request.req) ? socketRoute(grant.modelApi, host, request.path) : httpRoute(request, grant.modelApi, host);
    if (route === undefined || route.kind === 'free') return;
    const spend = conn.spending.spend;
    const scope = spendScope(request);
    if (route.kind === 'metered') {
      const length = Number(request.req.headers['content-length']);
      request.model = new ModelExchange(route.plan, scope, Number.isSafeInteger(length) && length > 0 ? length : undefined);
      // cost_usd's place on the audit line, taken now (undefined: not written unless priced), before
      // the credential stage adds secret_source: the line's extras then stay in sorted order and it
      // is serialised as it is, V8's fast path, not copied into order (docs/perf/spend.md).
      request.draft.event.cost_usd = undefined;
    }
    if (!spend.budgeted(scope)) return;
    const headers = request.req.headers;
    const unread =
      route.kind === 'metered'
        ? (protobufAnswer(headers['content-type'], headers.accept) ??
          reshapedAnswer(route.plan, host, request.query, headers['x-goog-fieldmask'] !== undefined))
        : undefined;
    if (route.kind === 'unknown' || unread !== undefined) {
      const what = unread === undefined ? 'a route no meter of keyway reads' : unread;
      throw unmeterable(
        `${request.req.method ?? 'GET'} ${request.path} (${what}) on grant ${grant.id}`,
        grant.id,
        'only the model routes keyway meters (docs/spend.md) pass under a budget',
      );
    }
    const now = request.conn.decisions.now();
    const verdict = spend.check(scope, now);
    if (verdict instanceof Promise)
      return verdict.then(
        (v) => judge(request, v, now),
        (err: unknown) => {
          throw new ProxyError('internal_error', 'model budgets cannot be checked: the primary process does not answer', {
            grant: grant.id,
            cause: err,
            hint: 'retry; keyway is restarting or stopping',
          });
        },
      );
    return judge(request, verdict, now);
  },
};

/** Who a request on model traffic spends for: its agent (none when anonymous), its grant, its end user. */
export function spendScope(request: StagedRequest): SpendScope {
  const { agent, modelMemo } = request.conn;
  // A delegated agent's ancestors, as its chain stands: their budgets count its spend too (issue 89).
  return modelMemo.scope(agent.source === 'anonymous' ? null : agent.id, request.grant!.id, agent.identity?.sub ?? null, agent.parents);
}

/**
 * An HTTP request as model traffic, judged as every method and path it names: a server that honours
 * X-HTTP-Method-Override (Google's front does) or X-Original-URL runs the named one, so `GET
 * /v1/messages` with `X-HTTP-Method-Override: POST` is a Messages call, not a free read. Stage
 * access has already refused an override it cannot read. The readings are combined strictly: any
 * `unknown` makes the request unknown, and so do two different metered routes (whose answer is
 * it?); else a metered reading meters it, else a free one passes.
 */
function httpRoute(request: StagedRequest, api: ModelApiHint, host: string): ModelRoute | undefined {
  const method = request.req.method ?? 'GET';
  const methods = overrideMethods(request.req.headers, request.query);
  const paths = overridePaths(request.req.headers);
  if (typeof methods === 'string' || typeof paths === 'string') return { kind: 'unknown' };
  // The common case, no override: the connection's last reading when this request is the same call.
  if (methods.length === 0 && paths.length === 0) return request.conn.modelMemo.route(api, host, method, request.path);
  let found: ModelRoute | undefined;
  for (const m of [method, ...methods.map((n) => n.method)])
    for (const p of [request.path, ...paths.map((n) => n.path)]) {
      const route = modelRoute(api, host, m, p);
      if (route === undefined || found?.kind === 'unknown') continue;
      if (route.kind === 'unknown') found = route;
      else if (route.kind === 'metered') {
        if (found?.kind === 'metered' && found.plan.route !== route.plan.route) found = { kind: 'unknown' };
        else if (found?.kind !== 'metered') found = route;
      } else found ??= route;
    }
  return found;
}

function judge(request: StagedRequest, verdict: BudgetVerdict, now: Date): void {
  const spend = request.conn.spending.spend;
  for (const standing of verdict.warn) spend.warn(standing, request.model?.scope);
  const over = verdict.over;
  if (over === undefined) return;
  request.draft.event.budget = over.budget.name;
  if (over.budget.over === 'approve') {
    // A person's yes lets this one request through (window 0): the next is asked again.
    request.approvalRule ??= { rule: over.budget.name, waitMs: BUDGET_APPROVAL_WAIT_MS, windowMs: 0, paths: undefined };
    return;
  }
  throw exceeded(request, over, now);
}

export function exceeded(request: StagedRequest, over: BudgetStanding, now: Date): ProxyError {
  const resets = over.resets_at.toISOString();
  const seconds = Math.max(1, Math.ceil((over.resets_at.getTime() - now.getTime()) / 1000));
  const unit = unitOf(over.budget);
  const used = unit === 'usd' ? `$${over.used.toFixed(6)} of $${limitOf(over.budget)}` : `${over.used} of ${limitOf(over.budget)} tokens`;
  const who = over.scope === '' ? '' : ` for ${over.scope}`;
  // A delegated agent refused by an ancestor's budget: the ancestor is named (issue 89).
  const counted = countedAgent(over);
  const parent = counted !== undefined && counted !== request.conn.agent.id ? ` (agent "${counted}", a parent of this agent)` : '';
  return new ProxyError(
    'budget_exceeded',
    `model budget ${over.budget.name}${who}${parent} has used ${used} this ${over.budget.per} (UTC); it resets at ${resets}`,
    {
      grant: request.grant!.id,
      hint: `retry after ${resets}`,
      retryAfter: seconds,
    },
  );
}

/** The agent whose count refused: the budget's own agent, or for `agent: "*"` the one its scope value names. */
function countedAgent(over: BudgetStanding): string | undefined {
  const agent = over.budget.agent;
  if (agent === undefined) return undefined;
  if (agent !== '*') return agent;
  const part = over.scope.split(',').find((p) => p.startsWith('agent='));
  return part === undefined ? undefined : decodeURIComponent(part.slice('agent='.length));
}
