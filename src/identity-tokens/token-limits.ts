import type { JWTPayload } from 'jose';

// keyway's own checks on a token whose signature and claims jose has already passed. jose checks a
// future `iat` only when asked for a maximum age, and caps nothing: a token with an `exp` centuries
// away would be a key that never runs out, whoever steals it. So, measured on keyway's clock:
// - `iat` may not be later than now + clock_skew (a token cannot have been issued in the future);
// - the token's lifetime, `exp - iat`, may not exceed max_token_lifetime; without an `iat` its
//   lifetime is unknown, so what is left of it, `exp - now`, is held to the cap (plus clock_skew);
// - `sub` is a string: it names the identity on audit lines and in map rules, and a list would match
//   a `sub` rule by any one element, so an issuer letting callers add subjects could pick its own.

export interface TokenLimits {
  /** Milliseconds keyway's clock may be off the issuer's. */
  readonly clockSkew: number;
  /** Milliseconds a token may live, from its iat (or from now) to its exp. */
  readonly maxLifetime: number;
}

/** Why a verified token is still refused, in words for the 407; undefined when it is within the limits. */
export function beyondLimits(payload: JWTPayload, limits: TokenLimits, now: number): string | undefined {
  if (typeof payload.sub !== 'string') return "the identity token's sub claim is not a string";
  // jose has checked exp is present and a number, and iat a number when present.
  const exp = (payload.exp as number) * 1000;
  const iat = typeof payload.iat === 'number' ? payload.iat * 1000 : undefined;
  if (iat !== undefined && iat > now + limits.clockSkew) return "the identity token's iat is in the future";
  const lifetime = iat === undefined ? exp - now - limits.clockSkew : exp - iat;
  if (lifetime > limits.maxLifetime)
    return `the identity token lives longer than its issuer's max_token_lifetime (${iat === undefined ? 'exp - now, it has no iat' : 'exp - iat'} is ${Math.round(lifetime / 1000)} s, at most ${limits.maxLifetime / 1000} s)`;
  return undefined;
}
