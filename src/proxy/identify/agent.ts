import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackAddress } from '../../config/index.ts';
import type { Agent, AgentTable } from '../../credentials/agents.ts';
import { ANONYMOUS_AGENT } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';
import { IdentityRefused, type IdentityVerifier, type VerifiedToken } from '../../identity-tokens/verifier.ts';
import { IDENTITY_USER } from './identity-user.ts';

export { IDENTITY_USER };

/**
 * Stage 1, identify: who is calling, from Proxy-Authorization: Basic AGENT_ID:AGENT_KEY (as clients
 * send the userinfo of HTTPS_PROXY), or an identity token (config identities:) as Basic jwt:TOKEN or
 * Bearer TOKEN. Returns the agent (a promise of it for a token) or throws 407.
 */
export function identifyAgent(req: IncomingMessage, agents: AgentTable, callerKey?: string, identities?: IdentityVerifier): Agent | Promise<Agent> {
  const header = req.headers['proxy-authorization'];
  let credentials = header === undefined ? undefined : parseBasic(header);
  if (callerKey !== undefined) credentials = unwrapCaller(credentials, callerKey);
  const token = callerKey === undefined ? presentedToken(header, credentials) : credentials?.id === IDENTITY_USER ? credentials.key : undefined;
  if (token !== undefined && identities !== undefined && identities.size > 0) return identifyByToken(token, agents, identities);
  if (agents.anonymous) {
    if (isLoopbackAddress(req.socket.remoteAddress)) return ANONYMOUS_AGENT;
    throw new ProxyError('proxy_auth_required', 'no agents are configured, so keyway serves loopback clients only', {
      hint: 'add an agent with `keyway agents add ID` and use its proxy URL',
    });
  }
  if (!credentials) {
    throw new ProxyError('proxy_auth_required', 'proxy credentials required', {
      hint: 'use the proxy URL printed by `keyway agents add` (http://AGENT_ID:AGENT_KEY@host:port)',
    });
  }
  const agent = agents.authenticate(credentials.id, credentials.key);
  if (!agent) throw new ProxyError('proxy_auth_required', 'unknown agent or wrong agent key');
  // A delegated agent past its TTL (or its parent's): its key is refused as a wrong one would be, saying why.
  if (agent.expiresAt !== undefined && agent.expiresAt <= Date.now()) {
    throw new ProxyError('proxy_auth_required', `agent "${agent.id}" expired at ${new Date(agent.expiresAt).toISOString()}`, {
      hint: 'ask its parent agent, or whoever runs keyway, for a new delegation',
    });
  }
  return agent;
}

/** The identity token a Proxy-Authorization carries (Bearer TOKEN, or Basic jwt:TOKEN), if any. */
export function presentedToken(header: string | undefined, credentials = header === undefined ? undefined : parseBasic(header)): string | undefined {
  if (credentials !== undefined) return credentials.id === IDENTITY_USER ? credentials.key : undefined;
  return header === undefined ? undefined : parseBearer(header);
}

/** An agent that proved an identity token: the agent it maps to, with the identity for the audit line. */
async function identifyByToken(token: string, agents: AgentTable, identities: IdentityVerifier): Promise<Agent> {
  let verified: VerifiedToken;
  try {
    verified = await identities.verify(token);
  } catch (err) {
    if (!(err instanceof IdentityRefused)) throw err;
    if (err.kind === 'unavailable') {
      throw new ProxyError('identity_unavailable', err.message, { hint: 'check the issuer with `keyway doctor`; the token was not judged' });
    }
    const hint = /has expired/.test(err.message) ? { hint: 'get a fresh token from its issuer' } : {};
    throw new ProxyError('proxy_auth_required', err.message, { ...hint, ...(err.identity ? { identity: err.identity } : {}) });
  }
  const agent = agents.get(verified.agent);
  if (agent === undefined || agent.source === 'anonymous') {
    throw new ProxyError('proxy_auth_required', `the identity token maps to agent "${verified.agent}", which does not exist`, {
      hint: 'add the agent under agents: (it needs no key) or with `keyway agents add`',
      identity: verified.identity,
    });
  }
  return { ...agent, identity: verified.identity, identityExpiresAt: verified.expiresAt, identityClaims: verified.claims, identityToken: token };
}

/**
 * `keyway fetch`'s own proxy listens on a loopback port any local process could find: it serves
 * only the request of the fetch that started it, whose proxy password begins with a one-time key
 * (fetchProxyPassword). What follows the key is the agent's own key, if the fetch names an agent.
 */
function unwrapCaller(credentials: { id: string; key: string } | undefined, callerKey: string): { id: string; key: string } | undefined {
  const given = Buffer.from(credentials?.key ?? '');
  const want = Buffer.from(callerKey);
  if (!credentials || given.length < want.length || !timingSafeEqual(given.subarray(0, want.length), want)) {
    throw new ProxyError('proxy_auth_required', 'this proxy serves only the keyway fetch that started it');
  }
  const rest = given.subarray(want.length).toString('utf8');
  if (rest === '') return undefined;
  if (!rest.startsWith('.')) throw new ProxyError('proxy_auth_required', 'this proxy serves only the keyway fetch that started it');
  return { id: credentials.id, key: rest.slice(1) };
}

/** The proxy credentials `keyway fetch` sends to its own proxy: the one-time key, then the agent's (unwrapCaller). */
export function fetchProxyCredentials(callerKey: string, agent: { id: string; key: string } | undefined): { id: string; key: string } {
  return agent ? { id: agent.id, key: `${callerKey}.${agent.key}` } : { id: 'keyway-fetch', key: callerKey };
}

/** The agent id a request's Proxy-Authorization names, right key or not (the throttle counts per name). */
export function claimedAgent(req: IncomingMessage): string | undefined {
  const header = req.headers['proxy-authorization'];
  return header === undefined ? undefined : parseBasic(header)?.id;
}

function parseBearer(header: string): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

function parseBasic(header: string): { id: string; key: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  return { id: decoded.slice(0, colon), key: decoded.slice(colon + 1) };
}
