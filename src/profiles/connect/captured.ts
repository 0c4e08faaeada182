// What a login run under keyway left in the store: the fields captured for the grant and agent since
// the run began. How `keyway connect AGENT --login` knows the login passed keyway, and says so.

import { CAPTURED_PREFIX } from '../../capture/core/placeholder.ts';
import type { CapturedToken } from '../../capture/core/captured.ts';
import type { CredentialStore } from '../../credentials/store/index.ts';

/** The fields (access_token, refresh_token, …) captured for `grant` and `agent` at or after `since`, each once. */
export async function capturedSince(store: Pick<CredentialStore, 'catchUp' | 'entries'>, grant: string, agent: string, since: Date): Promise<string[]> {
  // The proxy that captured is another process: its write is read from the store as it is now.
  await store.catchUp();
  const fields = new Set<string>();
  for (const [, record] of store.entries<CapturedToken>(CAPTURED_PREFIX)) {
    if (record.grant === grant && record.agent === agent && Date.parse(record.captured_at) >= since.getTime()) fields.add(record.field);
  }
  return [...fields];
}
