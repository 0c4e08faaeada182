import type { GrantRouter } from '../policy/access.ts';
import type { AgentTable } from './agents.ts';
import type { Grant } from './grant.ts';

/** The tables the proxy reads per request, built by the reload half (app/live-config.ts) and swapped whole when the store changes. */
export interface ProxyTables {
  readonly router: GrantRouter<Grant>;
  readonly agents: AgentTable;
}
