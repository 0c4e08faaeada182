import { staticCredential } from '../../credentials/providers/static.ts';
import type { Grant } from '../../credentials/grant.ts';
import { chainOf } from '../../delegation/chain.ts';
import { ProxyError } from '../../errors/index.ts';
import { REFUSED, rpcErrorBody } from '../../mcp/rpc-errors.ts';
import { boundRefusal, holdWhole } from '../body-hold.ts';
import { redactAll, secretNeedles } from '../leak-guard/index.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * A rule with approve: human (stage access found one): the request goes on only with a person's
 * yes: a window they gave that covers it, a yes for this very request, or one given while it is
 * held here (approvals/desk.ts). After the limits (a request over its rate asks nobody), before the
 * credential (a request that is never approved costs no refresh). Its body is held whole, bounded
 * by approvals.max_held_body: the approver sees a redacted preview of it, and a yes covers that
 * body only. Returns a promise only when a rule wants a yes.
 */
export const approval: HeadStage = {
  name: 'approval',
  injected: true,
  run(request) {
    if (request.approvalRule === undefined) return;
    return ask(request);
  },
};

async function ask(request: StagedRequest): Promise<void> {
  const { conn, req, draft } = request;
  const grant = request.grant!;
  const rule = request.approvalRule!;
  const desk = conn.decisions.approvals;
  // Held whole: it is the request a person approves, and the same bytes go upstream.
  const cap = desk.limits().max_held_body;
  const body = await holdWhole(
    request,
    cap,
    boundRefusal(request, cap, { why: "a request waiting for a person's yes is held whole", bound: 'approvals.max_held_body' }),
  );
  try {
    const passed = await desk.pass({
      agent: conn.agent.id,
      chain: chainOf(conn.agent),
      grant: grant.id,
      method: req.method ?? 'GET',
      // As the audit line has it (stage path-secret): what the approver is shown and the record keeps.
      path: request.draft.event.path ?? request.path,
      query: request.query,
      overrides: overridesNamed(request),
      tool: request.mcp?.call?.tools || undefined,
      bodyKey: request.mcp?.call?.key,
      host: draft.event.host,
      port: draft.event.port,
      // As the audit line has it: the grant's secret redacted in any form (stage purpose), cut.
      purpose: request.purpose === undefined ? undefined : (request.draft.event.purpose ?? undefined),
      rule,
      body,
      shown: withSecretMasked(grant, body),
      contentType: typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : undefined,
      contentEncoding: req.headers['content-encoding'],
      onClientGone: (listener) => request.onClientGone(listener),
    });
    draft.event.approval = { id: passed.id, outcome: passed.outcome, by: passed.by };
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    if (err.approval) draft.event.approval = { id: err.approval.id, outcome: err.approval.state === 'pending' ? 'required' : err.approval.state };
    throw asRpcAnswer(request, err);
  }
}

/**
 * The body with the grant's static secret masked (`*`, the same length, so JSON and form bodies
 * still read as what they are) in every form the leak guard knows: what a person is shown must
 * never carry keyway's own secret (default deny: the needles, not names or shapes, decide). An
 * OAuth token is not known yet here (stage credential is later), so no agent can hold it either.
 */
function withSecretMasked(grant: Grant, body: Buffer): Buffer | undefined {
  if (body.length === 0) return undefined;
  const known = staticCredential(grant.type, grant.material);
  const needles = known === undefined ? [] : secretNeedles(known);
  if (needles.length === 0) return undefined;
  const { output, count } = redactAll(body, needles, 'mask');
  return count > 0 ? output : undefined;
}

/** The methods and paths the request's override headers named (stage access recorded them). */
function overridesNamed(request: StagedRequest): string | undefined {
  const { method_override: methods, path_override: paths } = request.draft.event;
  const named = [methods ? `method ${methods}` : undefined, paths ? `path ${paths}` : undefined].filter(Boolean);
  return named.length > 0 ? named.join('; ').slice(0, 1024) : undefined;
}

/** On an MCP endpoint, the refusal as JSON-RPC errors for each request id (the MCP client shows them to the model). */
function asRpcAnswer(request: StagedRequest, err: ProxyError): ProxyError {
  const call = request.mcp?.call;
  if (call === undefined || call.ids.length === 0) return err;
  const keyway = { code: err.code, message: err.message, ...(err.approval ? { approval: err.approval } : {}) };
  const body = rpcErrorBody(
    call.ids.map((id) => ({ id, code: REFUSED, keyway })),
    call.batch,
  );
  return new ProxyError(err.code, err.message, {
    grant: err.grant,
    hint: err.hint,
    retryAfter: err.retryAfter,
    approval: err.approval,
    answer: { status: 200, body },
  });
}
