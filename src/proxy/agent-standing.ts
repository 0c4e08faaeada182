import type { Agent, AgentTable } from '../credentials/agents.ts';
import { ANONYMOUS_AGENT } from '../credentials/agents.ts';
import type { IdentityVerifier } from '../identity-tokens/verifier.ts';

// A connection signs in once (at CONNECT, or when a redirected connection is accepted), but the
// agent it signed in as can change under it: removed (`keyway agents rm`), given a new key
// (`agents rotate-key`), its grants or rules narrowed, its identity mapping removed by a reload.
// Every request that takes a grant is judged against the agent as it stands now (connection.ts
// asks here whenever the tables or the identities change), and a connection whose sign-in no
// longer holds is refused and closed (client-connections.ts sweeps them).

/** How a connection proved who it is: what must still hold for it to stay that agent. */
export type SignIn =
  /** No agents configured: loopback clients are the local agent, until agents are configured. */
  | { readonly kind: 'anonymous' }
  /** AGENT:KEY: the same key must still be the agent's (a rotated key ends the connection). */
  | { readonly kind: 'key'; readonly keySha256: Buffer }
  /** A redirected connection (proxy.transparent.agent, run --contain): the agent must still exist. */
  | { readonly kind: 'named' }
  /** An identity token: its claims must still map to the agent under the identities in force. */
  | { readonly kind: 'identity'; readonly iss: string; readonly claims: Readonly<Record<string, unknown>> };

/** The sign-in a connection made, read off the agent identify returned. */
export function signInOf(agent: Agent, redirected: boolean): SignIn {
  if (agent.source === 'anonymous') return { kind: 'anonymous' };
  if (agent.identity !== undefined && agent.identityClaims !== undefined) return { kind: 'identity', iss: agent.identity.iss, claims: agent.identityClaims };
  if (redirected || agent.keySha256 === undefined) return { kind: 'named' };
  return { kind: 'key', keySha256: agent.keySha256 };
}

/** The agent as it stands now, or why the connection no longer speaks for it. */
export type Standing = { readonly agent: Agent } | { readonly revoked: string };

/**
 * `signedIn` (the agent at sign-in) as the current tables and identities have it: its grants,
 * rules and limits as they are now, or the reason it is gone. Pure: no clock, no I/O.
 */
export function standingOf(signIn: SignIn, signedIn: Agent, agents: AgentTable, identities: IdentityVerifier | undefined): Standing {
  if (signIn.kind === 'anonymous') {
    return agents.anonymous ? { agent: ANONYMOUS_AGENT } : { revoked: 'agents are configured now, and this connection signed in as none' };
  }
  const now = agents.get(signedIn.id);
  if (now === undefined || now.source === 'anonymous') return { revoked: `agent "${signedIn.id}" was removed` };
  if (signIn.kind === 'key') {
    if (now.keySha256 === undefined || !now.keySha256.equals(signIn.keySha256)) return { revoked: `agent "${signedIn.id}" has a new key` };
    return { agent: now };
  }
  if (signIn.kind === 'named') return { agent: now };
  if (identities?.mapAgain(signIn.iss, signIn.claims) !== signedIn.id) {
    return { revoked: `the identity this connection signed in with no longer maps to agent "${signedIn.id}"` };
  }
  return {
    agent: {
      ...now,
      identity: signedIn.identity,
      identityExpiresAt: signedIn.identityExpiresAt,
      identityClaims: signIn.claims,
      identityToken: signedIn.identityToken,
    },
  };
}
