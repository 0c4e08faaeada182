import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Agent, agentChain } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';
import type { ProxyWiring } from './wiring.ts';
import { Connection } from '../connection.ts';
import { checkDestination } from '../destination.ts';
import { handleExchange } from './exchange.ts';
import { clientAddress, draftOn, refuse } from '../refuse.ts';
import { asProxyError } from '../respond.ts';
import { SELF_CHECK_HOST } from '../self-check.ts';
import { parseAbsoluteUrl, type Target } from '../target.ts';

/**
 * An absolute-form http:// request to the listener: parse -> identify -> check the destination,
 * then the same exchange as a request inside an intercepted connection, on a connection of its own.
 */
export async function handlePlainRequest({ runtime, auth }: ProxyWiring, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const client = clientAddress(req.socket);
  let target: Target | undefined;
  let agent: Agent | undefined;
  let path: string;
  try {
    const parsed = parseAbsoluteUrl(req.url ?? '');
    target = parsed.target;
    path = parsed.path;
    if (parsed.scheme === 'https') throw new ProxyError('bad_request', 'send https:// through CONNECT (set HTTPS_PROXY)');
    agent = await auth.identify(req, runtime.tables().agents, client, runtime.callerKey, runtime.identities());
    // keyway's own name (its check, its delegation door) is answered inside TLS only: never looked up, never sent on.
    if (target.host === SELF_CHECK_HOST) throw new ProxyError('bad_request', `${SELF_CHECK_HOST} answers https:// only, through CONNECT (set HTTPS_PROXY)`);
    await checkDestination(runtime, target);
  } catch (err) {
    const error = asProxyError(err);
    // Throttled: one answer per connection, so each further try costs the client a new one.
    if (error.code === 'rate_limited') res.shouldKeepAlive = false;
    // Whatever was known when the refusal came: the target (never its query) and the agent.
    const draft = draftOn(undefined, req.method ?? null, client);
    draft.event.host = target?.host ?? '';
    draft.event.port = target?.port ?? 0;
    draft.event.agent = agent?.id ?? null;
    if (agent?.identity !== undefined) draft.event.identity = agent.identity;
    const chain = agent === undefined ? undefined : agentChain(agent);
    if (chain !== undefined) draft.event.chain = chain;
    return refuse(runtime, draft, error, res);
  }
  await handleExchange(new Connection(runtime, target, agent, client), req, res, path);
}
