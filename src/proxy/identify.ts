import type { IncomingMessage } from 'node:http';
import { isLoopbackAddress } from '../config/index.ts';
import type { Agent, AgentTable } from '../credentials/agents.ts';
import { ANONYMOUS_AGENT } from '../credentials/agents.ts';
import { ProxyError } from '../errors/index.ts';

/**
 * Stage 1, identify: who is calling, from Proxy-Authorization (Basic AGENT_ID:AGENT_KEY, as clients
 * send the userinfo of HTTPS_PROXY). Returns the agent or throws 407.
 */
export function identifyAgent(req: IncomingMessage, agents: AgentTable): Agent {
  if (agents.anonymous) {
    if (isLoopbackAddress(req.socket.remoteAddress)) return ANONYMOUS_AGENT;
    throw new ProxyError('proxy_auth_required', 'no agents are configured, so keyway serves loopback clients only', {
      hint: 'add an agent with `keyway agents add ID` and use its proxy URL',
    });
  }
  const header = req.headers['proxy-authorization'];
  const credentials = header === undefined ? undefined : parseBasic(header);
  if (!credentials) {
    throw new ProxyError('proxy_auth_required', 'proxy credentials required', {
      hint: 'use the proxy URL printed by `keyway agents add` (http://AGENT_ID:AGENT_KEY@host:port)',
    });
  }
  const agent = agents.authenticate(credentials.id, credentials.key);
  if (!agent) throw new ProxyError('proxy_auth_required', 'unknown agent or wrong agent key');
  return agent;
}

function parseBasic(header: string): { id: string; key: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  return { id: decoded.slice(0, colon), key: decoded.slice(colon + 1) };
}
