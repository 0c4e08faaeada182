// Who may use the admin API: a caller that presents the admin token from data/admin.token, as
// `Authorization: Bearer …` or `X-API-Key: …`, compared in constant time.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type AdminAuth = (req: IncomingMessage) => boolean;

export function tokenAuth(token: string): AdminAuth {
  const expected = sha256(token);
  return (req) => {
    const offered = offeredToken(req);
    // Hashes first: equal lengths for timingSafeEqual, and no early exit on length. An empty offer
    // never passes, even if the token were somehow empty too.
    return timingSafeEqual(sha256(offered), expected) && offered.length > 0;
  };
}

/** `Authorization: Bearer <token>` or `X-API-Key: <token>`; '' when neither is given. */
function offeredToken(req: IncomingMessage): string {
  const auth = req.headers.authorization ?? '';
  if (/^Bearer /i.test(auth)) return auth.slice(7).trim();
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' ? apiKey.trim() : '';
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
