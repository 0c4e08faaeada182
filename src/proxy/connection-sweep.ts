import { ProxyError } from '../errors/index.ts';
import { AuditDraft } from './audit-event.ts';
import { Connection } from './connection.ts';
import type { ClientConnections } from './connections.ts';
import type { ProxyRuntime } from './runtime.ts';

/**
 * How often open connections are asked whether they still speak for their agent. A revocation
 * (`keyway agents rm`, `rotate-key`, a narrowing reload) reaches the tables within a second (store
 * watch, reload); this closes what it ended within another half second, idle keep-alives, blind
 * tunnels and WebSockets included, which no request of theirs would otherwise show.
 */
const SWEEP_MS = 500;

/** Starts the sweep; returns its stop. Each connection closed is audited, with its agent and why. */
export function sweepConnections(runtime: ProxyRuntime, connections: ClientConnections): () => void {
  const timer = setInterval(() => {
    connections.sweep(Date.now(), (standing, reason) => {
      if (!(standing instanceof Connection)) return;
      const { target, client } = standing;
      const draft = new AuditDraft({ method: 'CONNECT', host: target.host, port: target.port, client, agent: standing.agent.id });
      const aged = reason.includes('max_connection_age');
      draft.failed(
        new ProxyError(aged ? 'request_timeout' : 'proxy_auth_required', `keyway closed the connection: ${reason}`, {
          hint: 'open a new connection with the current proxy credentials',
        }),
      );
      if (standing.via !== undefined) draft.event.via = standing.via;
      draft.commit(runtime);
    });
  }, SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
