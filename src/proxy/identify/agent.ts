import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackAddress } from '../../config/index.ts';
import type { Agent, AgentTable } from '../../credentials/agents.ts';
import { ANONYMOUS_AGENT } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';

/**
 * Stage 1, identify: who is calling, from Proxy-Authorization (Basic AGENT_ID:AGENT_KEY, as clients
 * send the userinfo of HTTPS_PROXY). Returns the agent or throws 407.
 */
export function identifyAgent(req: IncomingMessage, agents: AgentTable, callerKey?: string): Agent {
  const header = req.headers['proxy-authorization'];
  let credentials = header === undefined ? undefined : parseBasic(header);
  if (callerKey !== undefined) credentials = unwrapCaller(credentials, callerKey);
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
  return agent;
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

function parseBasic(header: string): { id: string; key: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  return { id: decoded.slice(0, colon), key: decoded.slice(colon + 1) };
}
