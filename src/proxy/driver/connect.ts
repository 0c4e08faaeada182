import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { auditUnavailable } from '../../audit/unavailable.ts';
import { agentChain } from '../../credentials/agents.ts';
import { AuditDraft } from '../audit-event.ts';
import { Connection, RefusedInside, type Route } from '../connection.ts';
import { checkDestination, refuseUnmatched } from '../destination.ts';
import { intercept } from './intercept.ts';
import { clientAddress, refuse } from '../refuse.ts';
import { auditIfUnanswered } from '../refuse-inside.ts';
import { asProxyError } from '../respond.ts';
import type { ProxyRuntime } from '../runtime.ts';
import { SELF_CHECK_HOST } from '../self-check.ts';
import { parseAuthority } from '../target.ts';
import { openTunnel } from './tunnel.ts';
import { guardsTunnel } from '../stages/index.ts';
import type { ProxyWiring } from './wiring.ts';

const INTERCEPT: Route = Object.freeze({ kind: 'intercept' });
const SELF_CHECK: Route = Object.freeze({ kind: 'self-check' });
const TUNNEL: Route = Object.freeze({ kind: 'tunnel' });

/**
 * A CONNECT: identify -> route (decided here, once, on the Connection) -> intercept, tunnel, or
 * refuse. A refusal for a host no grant covers (or before the agent is known) is given on the
 * CONNECT itself; one for a host a grant covers is given inside TLS, where clients show the body.
 */
export function handleConnect(wiring: ProxyWiring, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { runtime, connections } = wiring;
  socket.on('error', () => socket.destroy());
  // The HTTP server's timers no longer apply: first_byte, handshake or the tunnel's idle do.
  (socket as Duplex & { setTimeout(ms: number): void }).setTimeout(0);
  connections.pending(socket);
  const draft = new AuditDraft({ method: 'CONNECT', host: '', port: 0, client: clientAddress(req.socket) });
  routeConnect(wiring, req, draft).then(
    (conn) => {
      const { route } = conn;
      connections.identified(socket, conn);
      // Signed in with an identity token: the connection ends when the token does, whatever it
      // carries by then (a blind tunnel, a WebSocket, HTTP/2 streams).
      if (conn.agent.identityExpiresAt !== undefined) closeAtExpiry(socket, conn.agent.identityExpiresAt);
      if (route.kind === 'tunnel') return void openTunnel(wiring, conn, { socket, head, draft });
      if (route.kind === 'intercept') runtime.upstream.prewarm(conn.target.host, conn.target.port);
      // Refused inside TLS: nothing goes upstream (refuse-inside.ts). Otherwise one audit line per
      // request inside, none for the CONNECT itself.
      if (route.kind === 'refuse-inside') auditIfUnanswered(runtime, socket, draft, route.refusal);
      intercept(wiring, conn, socket, head);
    },
    (err: unknown) => refuse(runtime, draft, asProxyError(err), socket),
  );
}

/** parse the target -> identify -> route -> check the destination. */
async function routeConnect({ runtime, auth }: ProxyWiring, req: IncomingMessage, draft: AuditDraft): Promise<Connection> {
  const target = parseAuthority(req.url ?? '');
  draft.event.host = target.host;
  draft.event.port = target.port;
  const agent = await auth.identify(req, runtime.tables().agents, draft.event.client, runtime.callerKey, runtime.identities());
  draft.event.agent = agent.id;
  if (agent.identity !== undefined) draft.event.identity = agent.identity;
  // A delegated agent's chain (src/delegation/), on the CONNECT's own line too (a refusal of the tunnel).
  const chain = agentChain(agent);
  if (chain !== undefined) draft.event.chain = chain;
  return routeConnection(runtime, new Connection(runtime, target, agent, draft.event.client));
}

/**
 * Where a connection to `conn.target` goes: keyway's self-check, a refusal inside TLS, a blind
 * tunnel or an interception; the destination checked. The CONNECT's and a redirected connection's alike.
 */
export async function routeConnection(runtime: ProxyRuntime, conn: Connection): Promise<Connection> {
  const { target } = conn;
  // keyway answers this name itself (keyway doctor): never resolved, never forwarded.
  if (target.host === SELF_CHECK_HOST && target.port === 443) return conn.decide(SELF_CHECK);
  const grants = conn.grants();
  if (grants.kind === 'refuse') return conn.decide({ kind: 'refuse-inside', refusal: new RefusedInside(grants.error) });
  if (grants.kind === 'unmatched') {
    refuseUnmatched(runtime, target);
    if (!runtime.audit.healthy) throw auditUnavailable(runtime.audit, 'down');
  }
  await checkDestination(runtime, target);
  return conn.decide(grants.kind === 'intercept' || guardsTunnel(runtime, conn) ? INTERCEPT : TUNNEL);
}

/** setTimeout's longest delay (about 24.8 days); a token that lives longer is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Destroys `socket` at `expiresAt` (epoch ms), unless it closes first. */
function closeAtExpiry(socket: Duplex, expiresAt: number): void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = expiresAt - Date.now();
    if (left <= 0) return void socket.destroy();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}
