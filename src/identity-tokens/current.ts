import type { Config, IdentityConfig } from '../config/index.ts';
import type { Dispatcher } from '../net/undici.ts';
import type { KeyUrlGuard } from './issuer-keys.ts';
import { IdentityVerifier } from './verifier.ts';

/**
 * The verifier for the config in force: made again when a reload changes `identities` (keeping the
 * keys of issuers whose key source did not change), undefined when there are none.
 */
export function currentIdentities(config: () => Config, dispatcher: Dispatcher, now?: () => number, guard?: KeyUrlGuard): () => IdentityVerifier | undefined {
  let seen: readonly IdentityConfig[] | undefined;
  let verifier: IdentityVerifier | undefined;
  return () => {
    const { identities, home } = config();
    if (identities !== seen) {
      seen = identities;
      verifier = identities.length === 0 ? undefined : new IdentityVerifier(identities, { home, dispatcher, now, guard }, verifier);
    }
    return verifier;
  };
}
