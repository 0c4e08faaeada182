import type { AddressInfo } from 'node:net';
import { proxyUrlFor } from '../config/index.ts';
import type { GrantServices } from '../operations/grants.ts';
import type { DelegationDoor } from '../proxy/contract.ts';
import type { Parts } from './parts.ts';

// Loaded at the first mint: a child's rules are read by the config's schema (zod, yaml), which a
// keyway's start does not load (test/unit/start-imports.test.ts).
const operations = () => import('../operations/delegation.ts');

/**
 * The proxy's door for an agent's own children (proxy/delegation-door.ts) over the operations the
 * command line and the admin API use: the same checks and terms, with the door's mint limit
 * (delegation/mint-limit.ts). The config is read live, so a reload's agents are the ones minted under.
 */
export function delegationDoor(parts: Parts, proxyAddress: () => AddressInfo | undefined): DelegationDoor {
  const services: GrantServices = {
    get config() {
      return parts.live.config;
    },
    store: parts.services.store,
  };
  return {
    async mint(parent, input) {
      const { delegateAgent } = await operations();
      const child = await delegateAgent(
        services,
        parent.id,
        { name: input.id, grants: input.grants, rules: input.rules, ttl: input.ttl, depth: input.depth, budget: input.budget },
        'api',
        parts.env,
        // What proved the parent at its sign-in; a token's child ends with the token.
        { door: true, signedInWith: parent.keySha256 ?? parent.identityTieSha256, notAfter: parent.identityExpiresAt },
      );
      const address = proxyAddress();
      return {
        ...child,
        proxy_url: address === undefined ? null : proxyUrlFor({ host: address.address, port: address.port }, { id: child.id, key: child.key }),
      };
    },
    async revoke(ancestor, id) {
      const { revokeDescendant } = await operations();
      const { chain_removed } = await revokeDescendant(services, ancestor, id);
      return { removed: chain_removed };
    },
  };
}
