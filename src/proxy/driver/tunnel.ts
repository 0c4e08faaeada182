import { connect, type Socket } from 'node:net';
import type { ConnectClient, ProxyWiring } from './wiring.ts';
import type { Connection } from '../connection.ts';
import { refuse } from '../refuse.ts';
import { formatAuthority } from '../target.ts';
import { refuseWithAlert } from '../tls-alert.ts';
import { upstreamError } from '../../egress/upstream-errors.ts';

/**
 * What the client waits for, and so how a failure to reach the host is said: the answer to its
 * CONNECT (502 on the CONNECT); a TLS server's hello, having sent its ClientHello to a redirected
 * listener (a TLS alert: a plain answer there reads as "wrong version number"); or the answer to a
 * plain request sent to a redirected listener (502).
 */
export type TunnelClient = 'connect' | 'tls' | 'http';

/**
 * A blind tunnel for a host no grant covers: bytes both ways, nothing read, nothing injected.
 * The client sees the real host's own certificate. One audit line when the tunnel closes.
 *
 * keyway cannot see requests inside, so its one rule is silence: a tunnel with no byte moving
 * either way for proxy.timeouts.idle is closed (each side's inactivity timer, reset by every read
 * and write; a client that stops reading stalls both). Half-closes are passed through: a FIN from
 * one side ends the other's writing, and the tunnel closes when both have ended.
 */
export async function openTunnel(
  { connections }: ProxyWiring,
  conn: Connection,
  { socket: client, head, draft }: ConnectClient,
  waits: TunnelClient = 'connect',
): Promise<void> {
  const { runtime, target } = conn;
  draft.event.decision = 'tunnel';
  let upstream: Socket;
  try {
    // Through the company's proxy (egress.proxy), which checks the name first; else straight to the checked address.
    const { egress } = runtime.upstream;
    if (egress?.covers(target.host)) upstream = await egress.tunnel(target.host, target.port);
    else upstream = await dial((await runtime.resolve(target.host)).address, target.port);
  } catch (err) {
    const error = upstreamError(err, formatAuthority(target));
    if (waits === 'tls') refuseWithAlert(runtime, draft, error, client);
    else refuse(runtime, draft, error, client);
    return;
  }
  // The dial is bounded (10 s); a client reset meanwhile is noticed here.
  if (client.destroyed) {
    upstream.destroy();
    draft.event.code = 'client_closed';
    draft.commit(runtime);
    return;
  }
  draft.event.status = 200;
  upstream.setNoDelay(true);
  if (waits === 'connect') client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) upstream.write(head);
  client.pipe(upstream);
  upstream.pipe(client);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    upstream.destroy();
    draft.commit(runtime);
  };
  client.on('close', close);
  upstream.on('close', close);
  client.on('error', close);
  upstream.on('error', close);
  const idle = runtime.config.proxy.timeouts.idle;
  const quietFor = (ms: number) => {
    (client as Socket).setTimeout(ms);
    upstream.setTimeout(ms);
  };
  quietFor(idle);
  client.on('timeout', close);
  upstream.on('timeout', close);
  connections.tunnel(client, (ms) => quietFor(Math.min(ms, idle)));
}

function dial(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, timeout: 10_000 });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('timeout', () => fail(Object.assign(new Error('connect timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}
