import type { Logger } from 'pino';
import type { RefusedCallback } from './refused.ts';
import { checkSlackSignature } from './signature.ts';

// HTTP interactivity: Slack POSTs each click to a URL on keyway's admin listener, as a form with
// one field, `payload` (JSON). Admitted only when all hold, in this order:
//   - approvals.slack is set with mode: http (otherwise the path does not exist: 404);
//   - X-Slack-Signature is the v0 HMAC of the timestamp and the exact raw body, and the timestamp
//     is within 5 minutes (signature.ts): a forged, altered or stale callback gets 401;
//   - the body is `payload=<JSON>` and nothing else: anything more or less gets 400;
// then the answer is 200 at once and the room takes the click in the background (clicks.ts: once per
// payload, mapped approvers only, bound to the approval's message and body), as Socket Mode acks
// first: Slack waits 3 s for the answer and a modal's trigger_id expires with it, while the click
// takes the store's lock, views.open, postEphemeral and a posting scan (Slack calls of up to 10 s
// each). A refused click answers 200 too: Slack shows the person no error, the room sends them an
// ephemeral message saying why. Every refusal, here or in the room, is an audit line (refused.ts):
// the 401s and 400s too, with the caller's address. A click that throws is logged, never unhandled.

export const MAX_CALLBACK_BYTES = 64 * 1024;

export type InteractivityAnswer =
  /** `clicked`: the room's refusal of the click (undefined when taken), settled after the answer. */
  | { status: 200; clicked: Promise<string | undefined> }
  | { status: 400 | 401; code: 'bad_request' | 'admin_auth_required' | 'admin_auth_failed'; message: string };

type Via = { kind: 'http'; client: string };

export async function answerInteractivity(
  room: { click(payload: unknown, via: Via): Promise<string | undefined>; refused(refused: RefusedCallback, via: Via): void },
  signingSecret: string,
  request: { rawBody: Buffer; timestamp: string | undefined; signature: string | undefined; client?: string | undefined },
  nowMs: number,
  logger: Pick<Logger, 'warn'>,
): Promise<InteractivityAnswer> {
  const via: Via = { kind: 'http', client: request.client ?? 'unknown' };
  const checked = checkSlackSignature(signingSecret, request, request.rawBody, nowMs);
  if (!checked.ok) {
    // No signature at all is asking without a credential; a wrong or stale one is a failed one.
    const code = checked.missing ? 'admin_auth_required' : 'admin_auth_failed';
    room.refused({ code, reason: `not a Slack callback: ${checked.reason}` }, via);
    return { status: 401, code, message: `not a Slack callback: ${checked.reason}` };
  }
  const bad = (message: string): InteractivityAnswer => {
    room.refused({ code: 'bad_request', reason: message }, via);
    return { status: 400, code: 'bad_request', message };
  };
  const form = new URLSearchParams(request.rawBody.toString('utf8'));
  const keys = [...form.keys()];
  if (keys.length !== 1 || keys[0] !== 'payload') return bad('expected one form field, payload');
  let payload: unknown;
  try {
    payload = JSON.parse(form.get('payload') ?? '');
  } catch {
    return bad('payload is not JSON');
  }
  const clicked = room.click(payload, via).catch((err: Error) => {
    logger.warn({ err: { message: err.message } }, 'a click failed');
    return 'the click failed';
  });
  return { status: 200, clicked };
}
