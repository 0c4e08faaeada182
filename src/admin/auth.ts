// Who may use the admin API: a caller that presents the admin token from data/admin.token, as
// `Authorization: Bearer …` or `X-API-Key: …`, compared in constant time; or the dashboard, with the
// session cookie it got by signing in with that token (session.ts). A session's writes must also
// carry its CSRF token: the cookie alone is what a browser sends by itself, so it cannot prove intent.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { sessionIdOf, type Session, type SessionStore } from './session.ts';

/** How a request proved it may use the API, or null when it did not. */
export type AdminCaller = { kind: 'token' } | { kind: 'session'; session: Session };

export type AdminAuth = (req: IncomingMessage) => AdminCaller | null;

/** Is `offered` the admin token? Constant time; an empty offer never passes. */
export type TokenCheck = (offered: string) => boolean;

export function tokenCheck(token: string): TokenCheck {
  const expected = sha256(token);
  // Hashes first: equal lengths for timingSafeEqual, and no early exit on length. An empty offer
  // never passes, even if the token were somehow empty too.
  return (offered) => timingSafeEqual(sha256(offered), expected) && offered.length > 0;
}

export function adminAuth(isToken: TokenCheck, sessions: SessionStore): AdminAuth {
  return (req) => {
    const offered = offeredToken(req);
    if (offered !== '') return isToken(offered) ? { kind: 'token' } : null;
    const id = sessionIdOf(req);
    const session = id === undefined ? undefined : sessions.touch(id);
    return session ? { kind: 'session', session } : null;
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
