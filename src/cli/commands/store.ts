import { readSecretRef, parseSecretRef } from '../../config/secret-ref.ts';
import { type CredentialStore, describeDatabase, PostgresStore, Store } from '../../credentials/store/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { resolve } from 'node:path';
import { parse, type Args } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { configFor, servicesFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';

const USAGE = `keyway store migrate [--json]
keyway store copy --to TARGET [--json]

\`migrate\` brings the PostgreSQL store's schema (store.backend: postgres) up to date; keyway start
does it too, and several replicas may run it at once. The file store has no schema.

\`copy\` copies every record of this home's store (whichever backend the config names) into
TARGET, then opens TARGET again and checks every record: TARGET is a postgres:// URL (or
env:NAME / file:PATH holding one, which keeps the password off the command line) or a file path
(a store.json). Records are re-sealed with the same master key, so the copy opens with it.
TARGET must be empty: nothing is overwritten. Stop keyway first: a token it refreshed during the
copy would be left behind. Then point store: in the config at TARGET.`;

export const store: Command = {
  name: 'store',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, { to: { type: 'string' } }, { migrate: 0, copy: 0 });
    const [action] = args.positionals;
    if (action === 'migrate') return migrateCommand(args.json, io, args);
    if (action === 'copy') {
      const to = args.string('to');
      if (!to) throw usageError('store copy: expected --to TARGET (a postgres:// URL, env:NAME, file:PATH, or a store file path)');
      return copyCommand(to, args.json, io, args);
    }
    throw usageError(`store: expected migrate or copy${action ? `, not "${action}"` : ''}`);
  },
};

async function migrateCommand(json: boolean, io: CommandIO, args: Args): Promise<number> {
  const config = configFor(args, io);
  if (config.store.backend !== 'postgres' || !config.store.url) {
    io.out(json ? JSON.stringify({ backend: 'file', applied: [] }) : 'the store is a file (store.backend: file): it has no schema to migrate');
    return 0;
  }
  const url = readSecretRef(config.store.url, io.env, config.home);
  const { applied, version } = await PostgresStore.migrate(url);
  // Audited once the schema is current: only then does the store (and with it the audit head key) open.
  const services = await servicesFor(args, io);
  try {
    await audited(services, io, { action: 'store.migrate', changed: applied.length > 0 ? ['schema'] : [] }, async () => undefined);
  } finally {
    await end(services.store);
  }
  if (json) printJson(io, { backend: 'postgres', database: describeDatabase(url), applied, version });
  else
    io.out(
      applied.length > 0
        ? `migrated ${describeDatabase(url)} to schema version ${version}`
        : `${describeDatabase(url)} is at schema version ${version}: nothing to do`,
    );
  return 0;
}

async function copyCommand(to: string, json: boolean, io: CommandIO, args: Args): Promise<number> {
  const services = await servicesFor(args, io);
  const source = services.store;
  const target = await openTarget(to, services.masterKey, services.config.home, io.env);
  try {
    if (target.store.path === source.path) throw new KeywayError('conflict', `store copy: ${target.name} is this home's own store`);
    const existing = target.store.entries('').length;
    if (existing > 0) throw new KeywayError('conflict', `store copy: ${target.name} already holds ${existing} records; copy only into an empty store`);
    const records = source.entries<unknown>('');
    // The line goes to this home's audit (the copy's source), whether the copy succeeds or is refused.
    await audited(services, io, { action: 'store.copy', changed: ['records'] }, async () => {
      await target.store.update((draft) => {
        for (const [id, value] of records) draft.set(id, value);
      });
      // Verified from a fresh read of the target, not from the copy in memory.
      const reread = await openTarget(to, services.masterKey, services.config.home, io.env);
      try {
        const copied = new Map(reread.store.entries<unknown>(''));
        const wrong = records.filter(([id, value]) => JSON.stringify(copied.get(id)) !== JSON.stringify(value)).map(([id]) => id);
        if (wrong.length > 0 || copied.size !== records.length) {
          throw new KeywayError(
            'store_corrupt',
            `store copy: ${target.name} does not read back as copied (${wrong.length} records differ, ${copied.size} of ${records.length} present)`,
          );
        }
      } finally {
        await end(reread.store);
      }
    });
    if (json) printJson(io, { copied: records.length, to: target.name, verified: true });
    else io.out(`copied ${records.length} records to ${target.name}, and read them all back`);
    return 0;
  } finally {
    await end(target.store);
    await end(source);
  }
}

async function openTarget(to: string, key: Buffer, home: string, env: NodeJS.ProcessEnv): Promise<{ store: CredentialStore; name: string }> {
  const ref = parseSecretRef(to);
  const text = ref ? readSecretRef(ref, env, home) : to;
  if (/^postgres(ql)?:\/\//.test(text)) return { store: await PostgresStore.open(text, key), name: describeDatabase(text) };
  if (ref) throw usageError(`store copy: ${to} does not hold a postgres:// URL`);
  const path = resolve(text);
  return { store: await Store.open(path, key), name: path };
}

async function end(store: CredentialStore): Promise<void> {
  if (store.end) await store.end();
  else store.close();
}
