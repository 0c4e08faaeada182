import type { Logger } from 'pino';
import { APPROVAL_PREFIX } from '../approvals/record.ts';
import { USAGE_PREFIX } from '../credentials/grant-record.ts';
import { QUOTA_PREFIX } from '../quotas/record.ts';
import { MINT_TIMES_PREFIX } from '../delegation/mint-limit.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import { BUDGET_PREFIX, SPEND_PREFIX } from '../spend/core/records.ts';
import type { LiveConfig } from './live-config.ts';

/**
 * The request path reads the tables only; a store change (a CLI write) rebuilds them whole. Not a
 * change to records the tables are not built from: usage (written every few seconds under
 * traffic), quota counts (every second under a bytes quota), approvals, and the spend ledger's
 * records and budget counts (twice a second under model traffic: each rebuilt every grant's
 * matchers and logged "store changed" for nothing). `others` hear of every change (a store has one
 * watcher). Anything else a change touches rebuilds them: a record kind added later errs towards a
 * rebuild too many, never one too few.
 */
export function watchStore(store: CredentialStore, live: LiveConfig, logger: Logger, others: ReadonlyArray<() => void> = []): void {
  let tableInputs = recordsBesideUsage(store);
  store.watch(
    () => {
      for (const other of others) other();
      const inputs = recordsBesideUsage(store);
      if (sameRecords(inputs, tableInputs)) return;
      tableInputs = inputs;
      try {
        live.rebuildTables();
        logger.info('store changed: grants and agents reloaded');
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'reload failed; keeping the previous grants');
      }
    },
    250,
    (err) => logger.error({ err: { message: err.message } }, 'store could not be re-read; keeping the previous grants'),
  );
}

// A parent's mint times (delegation/mint-limit.ts) are counts, not terms of any agent.
const NOT_TABLE_INPUTS = [USAGE_PREFIX, QUOTA_PREFIX, APPROVAL_PREFIX, SPEND_PREFIX, BUDGET_PREFIX, MINT_TIMES_PREFIX];

/** Every store record but those above, by id: what the grant and agent tables may be built from. */
function recordsBesideUsage(store: CredentialStore): Array<[string, unknown]> {
  return store.entries<unknown>('').filter(([id]) => !NOT_TABLE_INPUTS.some((prefix) => id.startsWith(prefix)));
}

/**
 * Whether two listings hold the same records. By identity: both store backends keep the value of a
 * record that did not change (values are frozen and replaced whole), so this costs no deep compare.
 */
function sameRecords(a: Array<[string, unknown]>, b: Array<[string, unknown]>): boolean {
  return a.length === b.length && a.every(([id, value], i) => b[i]![0] === id && b[i]![1] === value);
}
