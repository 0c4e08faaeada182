import { chainOf } from '../../delegation/chain.ts';
import type { HeadStage } from './request.ts';

/**
 * A delegated agent's audit line carries its chain (root, …, the agent), first thing, so that a
 * refusal by any later stage names it too; a root agent's line carries none. The agent as the
 * connection last knew it: stage grant refuses one no longer standing.
 */
export const delegationChain: HeadStage = {
  name: 'delegation-chain',
  injected: false,
  run(request) {
    const chain = chainOf(request.conn.agent);
    if (chain !== undefined) request.draft.event.chain = chain;
  },
};
