import type { RefusedCallback } from './refused.ts';
import { checkSlackSignature } from './signature.ts';

// HTTP interactivity: Slack POSTs each click to a URL on keyway's admin listener, as a form with
// one field, `payload` (JSON). Admitted only when all hold, in this order:
//   - approvals.slack is set with mode: http (otherwise the path does not exist: 404);
//   - X-Slack-Signature is the v0 HMAC of the timestamp and the exact raw body, and the timestamp
//     is within 5 minutes (signature.ts): a forged, altered or stale callback gets 401;
//   - the body is `payload=<JSON>` and nothing else: anything more or less gets 400;
// then the room takes the click (room.ts: once per payload, mapped approvers only, bound to the
// approval's message and body). A refused click still answers 200: Slack shows the person no
// error, the room has sent them an ephemeral message saying why. Every refusal, here or in the
// room, is an audit line (refused.ts): the 401s and 400s too, with the caller's address.

export const MAX_CALLBACK_BYTES = 64 * 1024;

export type InteractivityAnswer =
  | { status: 200; body: Record<string, unknown> }
  | { status: 400 | 401; code: 'bad_request' | 'admin_auth_required' | 'admin_auth_failed'; message: string };

type Via = { kind: 'http'; client: string };

export async function answerInteractivity(
  room: { click(payload: unknown, via: Via): Promise<string | undefined>; refused(refused: RefusedCallback, via: Via): void },
  signingSecret: string,
  request: { rawBody: Buffer; timestamp: string | undefined; signature: string | undefined; client?: string | undefined },
  nowMs: number,
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
  const refused = await room.click(payload, via);
  return { status: 200, body: refused === undefined ? { ok: true } : { ok: false, reason: refused } };
}
