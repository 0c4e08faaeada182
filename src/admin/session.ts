// Dashboard sessions: the admin token is typed once on the sign-in page and exchanged for an opaque
// random session id in an `HttpOnly; SameSite=Strict` cookie, so the token itself never sits in the
// browser (no localStorage, nothing a script on the page could read). Sessions live in memory only:
// a restart signs everyone out, which is the safe failure. Each session has an idle and an absolute
// expiry, and its own CSRF token that every call made with the cookie must echo in X-Keyway-CSRF.
//
// Every call, reads included: browsers do not keep cookies apart by port, so any other web server on
// 127.0.0.1 (one an agent starts, say) that this browser visits is sent the session cookie too. The
// CSRF token lives in the page's own storage, which is kept apart by port (the origin), so the
// cookie alone reads nothing. The SSE stream, which a browser opens without custom headers, may
// carry the token as its `csrf` query parameter instead (GET only; no GET is audited or logged).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'keyway_session';
export const CSRF_HEADER = 'x-keyway-csrf';

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeenAt: number;
}

export interface SessionLimits {
  /** A session unused this long is gone. */
  idleMs: number;
  /** A session older than this is gone however busy it is. */
  absoluteMs: number;
  /** Most sessions held at once; the oldest goes first (memory stays bounded whoever signs in). */
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, absoluteMs: 12 * 60 * 60_000, maxSessions: 64 };

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #limits: SessionLimits;
  readonly #now: () => number;

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  create(): Session {
    this.#sweep();
    while (this.#sessions.size >= this.#limits.maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const now = this.#now();
    // 256 bits each, from the CSPRNG: neither can be guessed, and the id says nothing about the token.
    const session: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeenAt: now };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id (its idle clock restarted), or undefined. */
  touch(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    const now = this.#now();
    if (this.#expired(session, now)) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  destroy(id: string): void {
    this.#sessions.delete(id);
  }

  /** When the session ends if left alone, and at the latest. */
  expiry(session: Session): { idle_expires_at: string; expires_at: string } {
    const absolute = session.createdAt + this.#limits.absoluteMs;
    return {
      idle_expires_at: new Date(Math.min(session.lastSeenAt + this.#limits.idleMs, absolute)).toISOString(),
      expires_at: new Date(absolute).toISOString(),
    };
  }

  /** Seconds for the cookie's Max-Age: it dies with the session's absolute expiry. */
  maxAgeSeconds(): number {
    return Math.floor(this.#limits.absoluteMs / 1000);
  }

  #expired(session: Session, now: number): boolean {
    return now - session.lastSeenAt >= this.#limits.idleMs || now - session.createdAt >= this.#limits.absoluteMs;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, session] of this.#sessions) if (this.#expired(session, now)) this.#sessions.delete(id);
  }
}

/** The session id the request's Cookie header carries, or undefined. */
export function sessionIdOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
  }
  return undefined;
}

/** Does the request carry this session's CSRF token (header, or `csrf` query parameter on a GET)? Constant time. */
export function csrfMatches(req: IncomingMessage, session: Session): boolean {
  const offered = offeredCsrf(req);
  if (offered === '') return false;
  return timingSafeEqual(sha256(offered), sha256(session.csrf));
}

/**
 * Takes a `csrf` query parameter off the request's URL once it has been checked: it is the auth
 * layer's, and the routes (which refuse parameters they do not know) never see it.
 */
export function dropCsrfParam(req: IncomingMessage): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q < 0) return;
  const query = new URLSearchParams(url.slice(q + 1));
  if (!query.has('csrf')) return;
  query.delete('csrf');
  const rest = query.toString();
  req.url = rest === '' ? url.slice(0, q) : `${url.slice(0, q)}?${rest}`;
}

function offeredCsrf(req: IncomingMessage): string {
  const header = req.headers[CSRF_HEADER];
  if (typeof header === 'string') return header;
  if (req.method !== 'GET') return '';
  return new URL(req.url ?? '/', 'http://admin.invalid').searchParams.get('csrf') ?? '';
}

/**
 * The Set-Cookie value. HttpOnly: no script reads it. SameSite=Strict: no other site's page makes the
 * browser send it. No `Secure`: the admin listener is plain HTTP on loopback, and a browser would
 * not send a Secure cookie back over http://127.0.0.1 in every case; loopback traffic does not leave
 * the machine.
 */
export function sessionCookie(id: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
