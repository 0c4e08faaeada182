import type { OutgoingHttpHeaders } from 'node:http';
import type { BodyGuard, ReadWhole } from '../leak-guard/response-guard.ts';
import { access } from './access.ts';
import { anomaly } from './anomaly.ts';
import { anomalySignals } from './anomaly-signals.ts';
import { anomalyTaught } from './anomaly-taught.ts';
import { approval } from './approval.ts';
import { auditCommit } from './audit-commit.ts';
import { auditReady } from './audit-ready.ts';
import { auditReservation } from './audit-reservation.ts';
import { auditWriteAhead } from './audit-write-ahead.ts';
import type { RequestBody } from '../replay-body.ts';
import { countBody, heldBody, keepForReplay, type RequestBodyStage, sign } from './body.ts';
import { bodySwap } from './body-swap.ts';
import { byteQuota } from './byte-quota.ts';
import { capture } from './capture.ts';
import { placeholders } from './placeholders.ts';
import { captureAnswer } from './capture-answer.ts';
import { captureBody } from './capture-body.ts';
import { captureSocket } from './capture-socket.ts';
import { credential } from './credential.ts';
import { delegation } from './delegation.ts';
import { grant } from './grant.ts';
import {
  type AnswerReader,
  AnswerReaders,
  type AnswerTap,
  type ClosedAnswer,
  type CloseStage,
  type RequestSentHook,
  type SocketTap,
  type SocketTapping,
} from './hooks.ts';
import { host } from './host.ts';
import { inject } from './inject.ts';
import { openExchange } from './open-exchange.ts';
import { originForm } from './origin-form.ts';
import { outgoing } from './outgoing.ts';
import { path } from './path.ts';
import { pathSecret } from './path-secret.ts';
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
import { modelCount } from './model-count.ts';
import { modelMeter } from './model-meter.ts';
import { modelSent } from './model-sent.ts';
import { mcpToolsList } from './mcp-tools-list.ts';
import { modelSocket } from './model-socket.ts';
import { leakGuardBody, leakGuardHeaders, type ResponseBodyStage, type ResponseHeadStage, scopeHint, type UpstreamAnswer } from './response.ts';
import { version } from './version.ts';
import type { RunEndedHook, TunnelGuard } from './hooks.ts';
import { captureRelease } from './capture-release.ts';
import { captureGuard } from './capture-guard.ts';
import type { Connection } from '../connection.ts';
import type { Decisions } from '../contract.ts';

// The request path, in order. A request inside an intercepted connection (or a plain http:// one)
// runs the head stages, then its body through the body stages, goes upstream (forward.ts: the
// request-sent hooks hear it go), and the answer comes back through the response stages, its bytes
// read by the answer taps on their way to the agent; when the response closes, the close stages
// run (exchange.ts). A WebSocket handshake runs the head stages too, and the socket it opens is
// read by the socket taps (websocket/forwarder.ts). Adding a stage or a hook is one file and one
// line here: the driver names none.

/** Before anything goes upstream: read, decide, refuse (throw), or wait (a refresh, a hold). */
export const HEAD_STAGES: readonly HeadStage[] = [
  version,
  originForm,
  path,
  host,
  grant,
  // The grant is known: its secret, written into the path by the agent, is kept off the audit line.
  pathSecret,
  outgoing,
  placeholders,
  purpose,
  auditReady,
  // Only when a grant was chosen: the request gets its credential.
  // Judged against the agent's own history before the rules, so a policy may read the signals.
  anomalySignals,
  access,
  // A delegated agent's request, asked of every ancestor too.
  delegation,
  purposeRequired,
  mcp,
  limits,
  budget,
  // Unusual use against the agent's own history: marked, or held for the approval stage to ask.
  anomaly,
  approval,
  // A held unusual request a person let through: its history learns it.
  anomalyTaught,
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

/** Hears the request go upstream: its body's pieces as undici sends them, then that it went whole. */
export const REQUEST_SENT_HOOKS: readonly RequestSentHook[] = [modelSent];

/** Read the bytes the agent gets of the answer (stages/hooks.ts): opened at the answer's head. */
export const ANSWER_TAPS: readonly AnswerTap[] = [modelMeter];

/** When the exchange's response closes, in order: what the request counts against, then its audit line. */
export const CLOSE_STAGES: readonly CloseStage[] = [byteQuota, modelCount, auditCommit];

/**
 * Read a WebSocket's messages both ways and hear it close (stages/hooks.ts): opened at the
 * handshake (where one may refuse it), started at its 101. In each direction the frames pass them
 * in this order: the budget check sees the agent's message before the placeholder search.
 */
export const SOCKET_TAPS: readonly SocketTap[] = [modelSocket, captureSocket];

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

/** A piece of the request body went upstream: every request-sent hook hears it. */
export function runBodySent(request: StagedRequest, chunk: Buffer): void {
  for (let i = 0; i < REQUEST_SENT_HOOKS.length; i++) REQUEST_SENT_HOOKS[i]!.bodySent(request, chunk);
}

/** The request went upstream whole. */
export function runRequestSent(request: StagedRequest): void {
  for (let i = 0; i < REQUEST_SENT_HOOKS.length; i++) REQUEST_SENT_HOOKS[i]!.sent(request);
}

/**
 * Opens the answer taps at the answer's head: what reads its bytes, or undefined when no tap reads
 * this answer (nothing is allocated then). Two or more readers are read as one (AnswerReaders).
 * `taps`: the list, for a test of more than one.
 */
export function openAnswerTaps(request: StagedRequest, answer: UpstreamAnswer, taps: readonly AnswerTap[] = ANSWER_TAPS): AnswerReader | undefined {
  let one: AnswerReader | undefined;
  let more: AnswerReader[] | undefined;
  for (let i = 0; i < taps.length; i++) {
    const reader = taps[i]!.open(request, answer);
    if (reader === undefined) continue;
    if (one === undefined) one = reader;
    else if (more === undefined) more = [one, reader];
    else more.push(reader);
  }
  return more === undefined ? one : new AnswerReaders(more);
}

/**
 * Runs the close stages in order, once, as the exchange's response closes. A close stage does not
 * throw: one that did would stop the rest, the audit line's commit among them.
 */
export function runCloseStages(request: StagedRequest, closed: ClosedAnswer): void {
  for (let i = 0; i < CLOSE_STAGES.length; i++) CLOSE_STAGES[i]!.run(request, closed);
}

/**
 * Opens the socket taps at a WebSocket's handshake, before it goes up: those that read this socket,
 * in the list's order (none: an empty list, and frames pass as they come).
 */
export function openSocketTaps(request: StagedRequest): SocketTapping[] {
  const open: SocketTapping[] = [];
  for (let i = 0; i < SOCKET_TAPS.length; i++) {
    const tapping = SOCKET_TAPS[i]!.open(request);
    if (tapping !== undefined) open.push(tapping);
  }
  return open;
}

/** When the exchange's run is over, whatever happened: what a stage held for the run goes back (stages/hooks.ts). */
export const RUN_ENDED_HOOKS: readonly RunEndedHook[] = [captureRelease];

/** Runs the run-ended hooks in order, once, as the exchange's run ends (answered, refused or failed). */
export function runEndedHooks(request: StagedRequest): void {
  for (let i = 0; i < RUN_ENDED_HOOKS.length; i++) RUN_ENDED_HOOKS[i]!.run(request);
}

/** At CONNECT, to a host no grant covers: whether the connection is read rather than tunnelled unread (stages/hooks.ts). */
export const TUNNEL_GUARDS: readonly TunnelGuard[] = [captureGuard];

/** Whether any tunnel guard reads this connection to a host no grant covers. */
export function guardsTunnel(runtime: Pick<Decisions, 'tables'>, conn: Connection): boolean {
  for (let i = 0; i < TUNNEL_GUARDS.length; i++) if (TUNNEL_GUARDS[i]!.reads(runtime, conn)) return true;
  return false;
}
