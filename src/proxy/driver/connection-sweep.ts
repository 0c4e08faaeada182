import { agentChain } from '../../credentials/agents.ts';
import { AuditDraft } from '../audit-event.ts';
import { Connection } from '../connection.ts';
import type { ClientConnections } from '../client-connections.ts';
import { connectionEnded } from '../open-exchanges.ts';
import type { ProxyRuntime } from '../runtime.ts';

/**
 * How often open connections are asked whether they still speak for their agent. A revocation
 * (`keyway agents rm`, `rotate-key`, a narrowing reload, `grants rm`) reaches the tables within a
 * second (store watch, reload); this closes what it ended within another half second, idle
 * keep-alives, blind tunnels and WebSockets included, which no request of theirs would otherwise show.
 */
const SWEEP_MS = 500;

/**
 * Starts the sweep; returns its stop. Each connection closed is audited, with its agent and why.
 * First, what is open under a grant (WebSockets, answers still coming: open-exchanges.ts) and no
 * longer stands is ended, each on its own audit line: a grant taken from an agent leaves its
 * connection standing, but not what the grant opened.
 */
export function sweepConnections(runtime: ProxyRuntime, connections: ClientConnections): () => void {
  const timer = setInterval(() => {
    runtime.openExchanges.sweep();
    connections.sweep(Date.now(), (standing, reason) => {
      if (!(standing instanceof Connection)) return;
      const { target, client } = standing;
      const draft = new AuditDraft({ method: 'CONNECT', host: target.host, port: target.port, client, agent: standing.agent.id });
      draft.failed(connectionEnded(reason));
      if (standing.via !== undefined) draft.event.via = standing.via;
      const chain = agentChain(standing.agent);
      if (chain !== undefined) draft.event.chain = chain;
      draft.commit(runtime);
    });
  }, SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
