import { createHmac, timingSafeEqual } from 'node:crypto';

// Slack signs each HTTP callback: `v0=` and the hex HMAC-SHA256, keyed with the app's signing
// secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`. A callback is admitted only when that
// signature matches over the exact bytes received (never a re-encoded body) and its timestamp is
// within five minutes of keyway's clock either way: a signed callback captured once cannot be
// sent again later (and within the five minutes, the room answers each payload once: seen.ts).

export const MAX_CALLBACK_AGE_S = 5 * 60;

export type SignatureCheck = { ok: true } | { ok: false; reason: string; missing?: true };

export function checkSlackSignature(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  nowMs: number,
): SignatureCheck {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'no X-Slack-Request-Timestamp (seconds)', missing: true };
  if (signature === undefined || !/^v0=[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'no X-Slack-Signature of the v0 form', missing: true };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_CALLBACK_AGE_S) return { ok: false, reason: 'the timestamp is more than 5 minutes from now' };
  const mac = createHmac('sha256', secret);
  mac.update(`v0:${timestamp}:`);
  mac.update(rawBody);
  const expected = Buffer.from(`v0=${mac.digest('hex')}`);
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'the signature does not match the body' };
  return { ok: true };
}
