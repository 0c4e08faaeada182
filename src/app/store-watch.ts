import type { Logger } from 'pino';
import { USAGE_PREFIX } from '../credentials/grant-record.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import type { LiveConfig } from './live-config.ts';

/**
 * The request path reads the tables only; a store change (a CLI write) rebuilds them whole. Not a
 * change to usage records alone: the usage recorder writes those every few seconds under traffic,
 * and rebuilding (and logging "store changed") for each of them was wasted work and noise.
 */
export function rebuildTablesOnStoreChange(store: CredentialStore, live: LiveConfig, logger: Logger): void {
  let tableInputs = recordsBesideUsage(store);
  store.watch(
    () => {
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

/** Every store record but the usage ones, by id: what the grant and agent tables may be built from. */
function recordsBesideUsage(store: CredentialStore): Array<[string, unknown]> {
  return store.entries<unknown>('').filter(([id]) => !id.startsWith(USAGE_PREFIX));
}

/**
 * Whether two listings hold the same records. By identity: both store backends keep the value of a
 * record that did not change (values are frozen and replaced whole), so this costs no deep compare.
 */
function sameRecords(a: Array<[string, unknown]>, b: Array<[string, unknown]>): boolean {
  return a.length === b.length && a.every(([id, value], i) => b[i]![0] === id && b[i]![1] === value);
}
