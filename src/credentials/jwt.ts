import { KeywayError } from '../errors/index.ts';

// A jwt grant's token: the user's own JWT, sent as a bearer token. keyway reads only its exp (no
// signature check: the token is not keyway's to verify) so that an expired token is never sent.

const PART = /^[A-Za-z0-9_-]+$/;

/**
 * The token's exp in epoch ms, or undefined when it has none (then it never expires for keyway).
 * Throws a usage error, never quoting the token, when it is not a JWT: three base64url parts whose
 * second is a JSON object, with a numeric exp if it has one.
 */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p, i) => PART.test(p) || (i === 2 && p === ''))) {
    throw new KeywayError('usage', 'a jwt secret is a JWT: three base64url parts separated by dots');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw new KeywayError('usage', "a jwt secret's payload (its second part) must be base64url JSON");
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw new KeywayError('usage', "a jwt secret's payload must be a JSON object");
  const exp = (payload as { exp?: unknown }).exp;
  if (exp === undefined) return undefined;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new KeywayError('usage', 'a jwt secret\'s "exp" must be a number (seconds since 1970)');
  return exp * 1000;
}

/** The exp of a token already accepted (stored earlier): undefined when it has none or cannot be read. */
export function storedJwtExpiry(token: string): number | undefined {
  try {
    return jwtExpiry(token);
  } catch {
    return undefined;
  }
}
