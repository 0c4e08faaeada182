import { randomUUID } from 'node:crypto';
import { loadJose } from '../../jose.ts';

// A delegated agent's chain, told to the token endpoint as RFC 8693 asks of an actor: an
// actor_token (type jwt) whose `sub` is the agent making the request (the current actor) and whose
// `act` claims nest its ancestors, nearest first, the root innermost (RFC 8693 4.1: the outermost
// `act` is the current actor, nested ones prior actors). An endpoint that honours it puts
// `act: {sub: child, act: {sub: parent, act: {sub: root}}}` on the token it issues.
//
// Signed HS256 with the grant's client secret, as OpenID's client_secret_jwt signs: the endpoint
// already holds that secret to authenticate keyway, so it can tell the chain came from keyway's
// client and not from the agent (who never sees the secret nor this token). Short-lived, aimed at
// the endpoint alone, and made afresh for each exchange: never cached, never logged.

/** How long an actor token is good for: one exchange's round trip, with room for clock skew. */
export const ACTOR_TOKEN_TTL_S = 120;

/** RFC 8693 4.1's nested actor: the current actor outermost. */
export interface ActClaim {
  readonly sub: string;
  readonly act?: ActClaim;
}

/** `chain` root first, the current actor last, as audit lines carry it: the `act` nesting of its prior actors (undefined for none). */
export function priorActors(chain: readonly string[]): ActClaim | undefined {
  let act: ActClaim | undefined;
  // Root innermost: built from the root outwards, stopping before the current actor.
  for (const sub of chain.slice(0, -1)) act = act === undefined ? { sub } : { sub, act };
  return act;
}

export interface ActorTokenFor {
  /** Root first, the agent making the request last (at least two: a root agent sends no actor token). */
  readonly chain: readonly string[];
  readonly clientId: string;
  readonly clientSecret: string;
  /** The token endpoint's URL: the token's audience. */
  readonly endpoint: string;
  readonly nowMs?: number;
}

export async function signActorToken(what: ActorTokenFor): Promise<string> {
  const current = what.chain.at(-1);
  if (current === undefined || what.chain.length < 2) throw new Error('an actor token is for a delegated agent: a chain of two or more');
  const { SignJWT } = await loadJose();
  const now = Math.floor((what.nowMs ?? Date.now()) / 1000);
  const act = priorActors(what.chain);
  return new SignJWT(act === undefined ? {} : { act: act as unknown as Record<string, unknown> })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(what.clientId)
    .setSubject(current)
    .setAudience(what.endpoint)
    .setIssuedAt(now)
    .setExpirationTime(now + ACTOR_TOKEN_TTL_S)
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(what.clientSecret));
}
