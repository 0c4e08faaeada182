import { checkSlackSignature } from './signature.ts';

// HTTP interactivity: Slack POSTs each click to a URL on keyway's admin listener, as a form with
// one field, `payload` (JSON). Admitted only when all hold, in this order:
//   - approvals.slack is set with mode: http (otherwise the path does not exist: 404);
//   - X-Slack-Signature is the v0 HMAC of the timestamp and the exact raw body, and the timestamp
//     is within 5 minutes (signature.ts): a forged, altered or stale callback gets 401;
//   - the body is `payload=<JSON>` and nothing else: anything more or less gets 400;
// then the room takes the click (room.ts: once per payload, mapped approvers only, bound to the
// approval's message and body). A refused click still answers 200: Slack shows the person no
// error, the room has sent them an ephemeral message saying why.

export const MAX_CALLBACK_BYTES = 64 * 1024;

export type InteractivityAnswer =
  | { status: 200; body: Record<string, unknown> }
  | { status: 400 | 401; code: 'bad_request' | 'admin_auth_required'; message: string };

export async function answerInteractivity(
  room: { click(payload: unknown): Promise<string | undefined> },
  signingSecret: string,
  request: { rawBody: Buffer; timestamp: string | undefined; signature: string | undefined },
  nowMs: number,
): Promise<InteractivityAnswer> {
  const checked = checkSlackSignature(signingSecret, request, request.rawBody, nowMs);
  if (!checked.ok) return { status: 401, code: 'admin_auth_required', message: `not a Slack callback: ${checked.reason}` };
  const form = new URLSearchParams(request.rawBody.toString('utf8'));
  const keys = [...form.keys()];
  if (keys.length !== 1 || keys[0] !== 'payload') return { status: 400, code: 'bad_request', message: 'expected one form field, payload' };
  let payload: unknown;
  try {
    payload = JSON.parse(form.get('payload') ?? '');
  } catch {
    return { status: 400, code: 'bad_request', message: 'payload is not JSON' };
  }
  const refused = await room.click(payload);
  return { status: 200, body: refused === undefined ? { ok: true } : { ok: false, reason: refused } };
}
