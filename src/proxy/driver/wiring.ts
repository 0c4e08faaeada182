import type { Duplex } from 'node:stream';
import type { AuditDraft } from '../audit-event.ts';
import type { ClientConnections } from '../client-connections.ts';
import type { ProxyRuntime } from '../runtime.ts';
import type { AuthThrottle } from '../identify/throttle.ts';
import type { InnerServers } from './inner.ts';

// The driver's own wiring, apart from the files that take a connection (connect.ts, intercept.ts,
// tunnel.ts), so that each names it without naming the others.

/** What the listener's handlers share, made once per proxy server (server.ts). */
export interface ProxyWiring {
  readonly runtime: ProxyRuntime;
  readonly inner: InnerServers;
  readonly connections: ClientConnections;
  /** Proxy authentication failures per client address: 429 after a few in a row. */
  readonly auth: AuthThrottle;
}

/** The CONNECT's own side: the client's socket, what it sent past the head, and the CONNECT's audit line. */
export interface ConnectClient {
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly draft: AuditDraft;
}
