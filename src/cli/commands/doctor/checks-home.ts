// The store and its key, opened as a command opens them: a home that lost its store or its key
// (store_missing, key_missing), a wrong key or a damaged store is named here, before `keyway start`
// refuses it. Opening never makes anything: a new home reads as one.

import { existsSync } from 'node:fs';
import { KeywayError } from '../../../errors/index.ts';
import { openServices } from '../../../open-home.ts';
import type { CheckResult, Context } from './context.ts';

const FIXES: Record<string, string> = {
  store_missing: 'restore data/store.json from a backup (with its key), or `keyway start --fresh-store` to begin anew on purpose',
  key_missing: 'restore data/master.key from a backup, or give the key in KEYWAY_MASTER_KEY',
  store_wrong_key: 'give the key this store was sealed with (KEYWAY_MASTER_KEY, KEYWAY_MASTER_KEY_FILE or data/master.key)',
  store_corrupt: 'restore data/store.json from a backup',
};

export async function checkStore(ctx: Context): Promise<CheckResult> {
  const check = 'store and master key';
  const onDatabase = ctx.config.store.backend === 'postgres';
  try {
    const services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
    try {
      const records = services.store.entries('').length;
      const made = onDatabase || existsSync(services.paths.store);
      return {
        check,
        status: 'ok',
        detail: made ? `opens with its key (${records} record${records === 1 ? '' : 's'})` : 'none yet: a new home (keyway start makes it)',
      };
    } finally {
      services.store.close();
      await services.store.end?.();
    }
  } catch (err) {
    if (!(err instanceof KeywayError)) return { check, status: 'fail', detail: `cannot be opened (${(err as Error).message})` };
    const fix = FIXES[err.code];
    return { check, status: 'fail', detail: err.message, ...(fix ? { fix } : {}) };
  }
}
