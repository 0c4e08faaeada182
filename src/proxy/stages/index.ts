import type { OutgoingHttpHeaders } from 'node:http';
import type { BodyGuard, ReadWhole } from '../leak-guard/response-guard.ts';
import { access } from './access.ts';
import { approval } from './approval.ts';
import { auditReady } from './audit-ready.ts';
import { auditReservation } from './audit-reservation.ts';
import { auditWriteAhead } from './audit-write-ahead.ts';
import type { RequestBody } from '../replay-body.ts';
import { countBody, heldBody, keepForReplay, type RequestBodyStage, sign } from './body.ts';
import { bodySwap } from './body-swap.ts';
import { capture } from './capture.ts';
import { placeholders } from './placeholders.ts';
import { captureAnswer } from './capture-answer.ts';
import { captureBody } from './capture-body.ts';
import { credential } from './credential.ts';
import { grant } from './grant.ts';
import { host } from './host.ts';
import { inject } from './inject.ts';
import { openExchange } from './open-exchange.ts';
import { originForm } from './origin-form.ts';
import { outgoing } from './outgoing.ts';
import { path } from './path.ts';
import { purpose } from './purpose.ts';
import { purposeRedaction } from './purpose-redaction.ts';
import { purposeRequired } from './purpose-required.ts';
import { signingPlan } from './signing-plan.ts';
import type { HeadStage, StagedRequest } from './request.ts';
import { limits } from './limits.ts';
import { budget } from './budget.ts';
import { modelBodySize, usageOption } from './usage-option.ts';
import { mcp } from './mcp.ts';
import { modelBody } from './model-body.ts';
import { mcpToolsList } from './mcp-tools-list.ts';
import { leakGuardBody, leakGuardHeaders, type ResponseBodyStage, type ResponseHeadStage, scopeHint, type UpstreamAnswer } from './response.ts';
import { version } from './version.ts';

// The request path, in order. A request inside an intercepted connection (or a plain http:// one)
// runs the head stages, then its body through the body stages, goes upstream (forward.ts), and the
// answer comes back through the response stages. Adding a stage is one file and one line here.

/** Before anything goes upstream: read, decide, refuse (throw), or wait (a refresh, a hold). */
export const HEAD_STAGES: readonly HeadStage[] = [
  version,
  originForm,
  path,
  host,
  grant,
  outgoing,
  placeholders,
  purpose,
  auditReady,
  // Only when a grant was chosen: the request gets its credential.
  access,
  purposeRequired,
  mcp,
  limits,
  budget,
  approval,
  signingPlan,
  capture,
  credential,
  purposeRedaction,
  auditReservation,
  auditWriteAhead,
  inject,
  openExchange,
];

/** The request body on its way up: held whole (bounded) when a stage needs all of it, else streamed. */
export const REQUEST_BODY_STAGES: readonly RequestBodyStage[] = [
  heldBody,
  captureBody,
  modelBody,
  bodySwap,
  usageOption,
  keepForReplay,
  sign,
  countBody,
  modelBodySize,
];

/** The upstream's response head, after hop-by-hop fields are dropped (headers.ts). */
export const RESPONSE_HEAD_STAGES: readonly ResponseHeadStage[] = [leakGuardHeaders, scopeHint];

/** Where the response body goes: the first stage with a plan for it decides (none: relayed as is). */
export const RESPONSE_BODY_STAGES: readonly ResponseBodyStage[] = [captureAnswer, mcpToolsList, leakGuardBody];

/** Runs the head stages in order; awaits only a stage that returned a promise. */
export async function runHeadStages(request: StagedRequest): Promise<void> {
  for (let i = 0; i < HEAD_STAGES.length; i++) {
    const stage = HEAD_STAGES[i]!;
    if (stage.injected && request.grant === undefined) continue;
    const pending = stage.run(request);
    if (pending !== undefined) await pending;
  }
}

/**
 * Runs the body stages in order on the body as the client sent it. A promise only once a stage
 * returns one: most requests (no body, or one streamed as is) pass without any.
 */
export function runBodyStages(request: StagedRequest, body: RequestBody, from = 0): RequestBody | Promise<RequestBody> {
  for (let i = from; i < REQUEST_BODY_STAGES.length; i++) {
    const next = REQUEST_BODY_STAGES[i]!.run(request, body);
    if (next instanceof Promise) return next.then((changed) => runBodyStages(request, changed, i + 1));
    if (next !== undefined) body = next;
  }
  return body;
}

/**
 * Runs the response stages on `head` (a copy of the answer's head without hop-by-hop fields:
 * clientResponseHeaders) and returns the plan for the body; undefined: relayed as it comes.
 */
export function runResponseStages(head: OutgoingHttpHeaders, answer: UpstreamAnswer): BodyGuard | ReadWhole | undefined {
  for (let i = 0; i < RESPONSE_HEAD_STAGES.length; i++) RESPONSE_HEAD_STAGES[i]!.run(head, answer);
  for (let i = 0; i < RESPONSE_BODY_STAGES.length; i++) {
    const body = RESPONSE_BODY_STAGES[i]!.run(head, answer);
    if (body) return body;
  }
  return undefined;
}
