// keyway key status | rewrap | rotate (issue 49): what keeps the store's master key, wrapping it
// with a KMS key, and a new master key with every record sealed again. Both changes are audited and
// have --plan. No key is ever printed: a fingerprint (HKDF of the key, its own label) tells keys apart.
import { randomBytes, hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/index.ts';
import type { KmsKeyConfig } from '../../config/secret-sources.ts';
import { AUDIT_KEYS_RECORD, dropPending, pendingPaths, promotePending } from '../../credentials/store/key-rotation.ts';
import { kmsLabel, kmsWrapper, readWrappedKey, wrappedKeyPath, wrappedKeyText } from '../../credentials/store/key-wrap.ts';
import { findMasterKey, MASTER_KEY_FILENAME } from '../../credentials/store/master-key.ts';
import { withKeyLock } from '../../credentials/store/lock.ts';
import { keyLinesOwed } from '../../credentials/store/owed-key-lines.ts';
import { removePlainCopy } from '../../credentials/store/rewrap-finish.ts';
import { readDatabaseKeyRow } from '../../credentials/store/postgres-key.ts';
import { describeDatabase } from '../../credentials/store/postgres-store.ts';
import { readSecretRef } from '../../config/secret-ref.ts';
import { PostgresStore, Store } from '../../credentials/store/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { replaceFileDurably } from '../../files/atomic-write.ts';
import { keywayPaths } from '../../paths.ts';
import { auditKeysRecord, deriveAuditHeadKey, type Services } from '../../open-home.ts';
import { type Args, parse } from '../args.ts';
import { openAuditLog } from '../../app/audit-log.ts';
import { audited, cliActor } from '../audit-change.ts';
import type { Command } from '../command.ts';
import { configFor, servicesFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';

const USAGE = `keyway key status [--json]
keyway key rewrap [--plan] [--json]
keyway key rotate [--plan] [--json]

\`status\` says what keeps the store's master key: data/master.key (a plain file: whoever reads it
can decrypt the store), KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE, or a KMS key that wraps it
(data/master.key.kms: nothing on disk decrypts the store alone), with the key's fingerprint.

\`rewrap\` wraps the master key with the KMS key store.key names (store.key: {kms: aws, key_id:
alias/keyway, region: …}): from data/master.key (which it then removes), or from another KMS key (a
key_id changed in the config). No secret is encrypted again; the master key stays the same.

\`rotate\` makes a new master key (by the KMS, wrapped, when store.key names one) and seals every
record of the store again under it in one write, while keyway serves: a running keyway follows on
its next read of the store. The audit keys stay (the checkpoint public key others hold is still
right). On PostgreSQL (with store.key naming a KMS) the wrapped key lives in the database and the
rotation is one transaction that every replica follows. A key given in KEYWAY_MASTER_KEY(_FILE)
cannot be changed here.

--plan   say what would be done, and change nothing`;

export const key: Command = {
  name: 'key',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, { plan: { type: 'boolean' } }, { status: 0, rewrap: 0, rotate: 0 });
    const [action] = args.positionals;
    if (action === 'status') return statusCommand(args, io);
    if (action === 'rewrap') return rewrapCommand(args, io);
    if (action === 'rotate') return rotateCommand(args, io);
    throw usageError(`key: expected status, rewrap or rotate${action ? `, not "${action}"` : ''}`);
  },
};

/** Tells keys apart without saying anything of them. */
export function keyFingerprint(key: Buffer): string {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'keyway master key fingerprint v1', 8)).toString('hex');
}

interface KeyState {
  kept: 'env' | 'key_file' | 'kms' | 'file' | 'none';
  where: string;
  kms_key_id: string | null;
  fingerprint: string | null;
  rotation_pending: boolean;
}

async function keyState(config: Config, env: NodeJS.ProcessEnv): Promise<KeyState> {
  const { dataDir } = keywayPaths(config);
  const pending = Object.values(pendingPaths(dataDir)).some((p) => existsSync(p));
  const given = env['KEYWAY_MASTER_KEY'] !== undefined || env['KEYWAY_MASTER_KEY_FILE'] !== undefined;
  // A database's key is read from it, not from this folder (which may hold none, or an older one).
  const inDatabase = config.store.backend === 'postgres' && config.store.key !== 'file' && !given;
  const found = inDatabase ? undefined : await findMasterKey({ dataDir, env, wrap: config.store.key });
  const fingerprint = found ? keyFingerprint(found.key) : null;
  if (env['KEYWAY_MASTER_KEY'] !== undefined) return { kept: 'env', where: 'KEYWAY_MASTER_KEY', kms_key_id: null, fingerprint, rotation_pending: pending };
  if (env['KEYWAY_MASTER_KEY_FILE'] !== undefined)
    return { kept: 'key_file', where: env['KEYWAY_MASTER_KEY_FILE'], kms_key_id: null, fingerprint, rotation_pending: pending };
  if (inDatabase && config.store.key !== 'file' && config.store.url !== undefined) {
    const url = readSecretRef(config.store.url, env, config.home);
    const row = await readDatabaseKeyRow(url);
    const key = row ? await (await kmsWrapper(config.store.key, env)).unwrap(Buffer.from(row.ciphertext, 'base64'), row.key_id) : undefined;
    return {
      kept: row ? 'kms' : 'none',
      where: `the database ${describeDatabase(url)} (keyway_master_key)`,
      kms_key_id: row?.key_id ?? null,
      fingerprint: key ? keyFingerprint(key) : null,
      rotation_pending: false,
    };
  }
  const wrapped = await readWrappedKey(dataDir);
  if (wrapped) return { kept: 'kms', where: wrappedKeyPath(dataDir), kms_key_id: wrapped.key_id, fingerprint, rotation_pending: pending };
  const plain = join(dataDir, MASTER_KEY_FILENAME);
  return { kept: found ? 'file' : 'none', where: plain, kms_key_id: null, fingerprint, rotation_pending: pending };
}

async function statusCommand(args: Args, io: CommandIO): Promise<number> {
  const config = configFor(args, io);
  const state = await keyState(config, io.env);
  // Reading the key may have finished a rewrap cut short: its line is written now, as any command's open does.
  if (keyLinesOwed(keywayPaths(config).dataDir)) await servicesFor(args, io);
  if (args.json) {
    printJson(io, state);
    return 0;
  }
  const lines: Record<KeyState['kept'], string> = {
    env: 'the master key comes from KEYWAY_MASTER_KEY (keyway does not keep it)',
    key_file: `the master key is read from ${state.where} (KEYWAY_MASTER_KEY_FILE)`,
    kms: `the master key is wrapped by ${state.kms_key_id}: ${state.where} holds only its ciphertext`,
    file: `the master key is in ${state.where}, in plain: whoever reads that file can decrypt the store (store.key: {kms: aws, …} and keyway key rewrap wrap it)`,
    none: 'no master key yet: keyway start (or the first write) makes one',
  };
  io.out(lines[state.kept]);
  if (state.fingerprint) io.out(`fingerprint ${state.fingerprint}`);
  if (state.rotation_pending) io.out('a rotation was cut short: the next keyway start (or keyway key rotate) finishes it');
  return 0;
}

function kmsOf(config: Config, command: string): KmsKeyConfig {
  if (config.store.key === 'file') {
    throw usageError(`key ${command}: store.key in the config names no KMS; set store.key: {kms: aws, key_id: alias/keyway, region: …} first`);
  }
  return config.store.key;
}

function refuseGivenKey(env: NodeJS.ProcessEnv, command: string): void {
  const name =
    env['KEYWAY_MASTER_KEY'] !== undefined ? 'KEYWAY_MASTER_KEY' : env['KEYWAY_MASTER_KEY_FILE'] !== undefined ? 'KEYWAY_MASTER_KEY_FILE' : undefined;
  if (name !== undefined)
    throw usageError(`key ${command}: the master key comes from ${name}, which keyway does not keep; unset it to work on the key keyway keeps`);
}

async function rewrapCommand(args: Args, io: CommandIO): Promise<number> {
  const config = configFor(args, io);
  const kms = kmsOf(config, 'rewrap');
  refuseGivenKey(io.env, 'rewrap');
  if (config.store.backend === 'postgres') {
    throw usageError(
      'key rewrap: a PostgreSQL store keeps its wrapped key in the database (made there at the first start); to move it to another KMS key, set store.key.key_id and run keyway key rotate',
    );
  }
  const { dataDir } = keywayPaths(config);
  const plainPath = join(dataDir, MASTER_KEY_FILENAME);
  const wrapped = await readWrappedKey(dataDir);
  if (wrapped === undefined && !existsSync(plainPath)) throw usageError(`key rewrap: no master key in ${dataDir} to wrap (keyway start makes one, wrapped)`);
  const from = wrapped ? kmsLabel(wrapped.kms, wrapped.key_id) : plainPath;
  const plan = `wrap the master key (now ${wrapped ? `wrapped by ${from}` : `in ${from}`}) with ${kmsLabel(kms.kms, kms.key_id)} into ${wrappedKeyPath(dataDir)}${wrapped ? '' : `, then remove ${plainPath}`}`;
  if (args.flag('plan')) {
    if (args.json) printJson(io, { plan: true, from, to: kms.key_id });
    else io.out(`would ${plan}; nothing is encrypted again`);
    return 0;
  }
  const wrapper = await kmsWrapper(kms, io.env);
  const { key, made, noted } = await withKeyLock(dataDir, sayTo(io), async () => {
    // Read again under the lock: a rotation that ended meanwhile changed the key.
    const current = await readWrappedKey(dataDir);
    const key = current ? await wrapper.unwrap(Buffer.from(current.ciphertext, 'base64'), current.key_id) : await readPlainKey(dataDir, plainPath);
    const wrappedPath = wrappedKeyPath(dataDir);
    const actor = { actor: cliActor(io.env) };
    // A plain file beside the wrapped key: a rewrap cut short, finished first (its line noted as owed);
    // one holding another key is refused before anything changes.
    const cutShort = current !== undefined && existsSync(plainPath);
    if (cutShort) {
      const plainKey = await readPlainKey(dataDir, plainPath, true);
      await removePlainCopy(dataDir, { plainPath, plainKey, key, ciphertext: current.ciphertext, wrappedPath }, actor);
    }
    const made = await wrapper.wrap(key);
    // Checked before anything is replaced: the new ciphertext opens to the same key.
    const unwrapped = await wrapper.unwrap(made.ciphertext, made.keyId);
    if (!unwrapped.equals(key)) throw new KeywayError('master_key_invalid', 'the KMS did not give back the key it wrapped; nothing changed');
    await replaceFileDurably(wrappedPath, wrappedKeyText(made.ciphertext, made.keyId, kms.kms), 0o600);
    // The plain file goes (its key.rewrap line noted as owed first), proven the key the new file unwraps to.
    if (!current)
      await removePlainCopy(dataDir, { plainPath, plainKey: key, key: unwrapped, ciphertext: made.ciphertext.toString('base64'), wrappedPath }, actor);
    return { key, made, noted: !current || cutShort };
  });
  const services = await servicesFor(args, io);
  // With a plain file removed, the line was noted as owed; else it is written as for any change.
  if (noted) await writeOwedLines(services, io);
  else await audited(services, io, { action: 'key.rewrap', changed: ['store.key'] }, async () => undefined);
  if (args.json) printJson(io, { rewrapped: true, from, to: made.keyId, fingerprint: keyFingerprint(key) });
  else io.out(`the master key is wrapped by ${kmsLabel(kms.kms, made.keyId)} (${wrappedKeyPath(dataDir)})${wrapped ? '' : `; ${plainPath} removed`}`);
  return 0;
}

/**
 * data/master.key as it is (no KMS asked, nothing generated). `besideWrapped`: read past the wrapped
 * key (a rewrap cut short); undefined when the file holds no key.
 */
async function readPlainKey(dataDir: string, path: string): Promise<Buffer>;
async function readPlainKey(dataDir: string, path: string, besideWrapped: true): Promise<Buffer | undefined>;
async function readPlainKey(dataDir: string, path: string, besideWrapped = false): Promise<Buffer | undefined> {
  if (besideWrapped) return (await findMasterKey({ dataDir, env: { KEYWAY_MASTER_KEY_FILE: path } }).catch(() => undefined))?.key;
  const found = await findMasterKey({ dataDir, env: {} });
  if (found === undefined) throw usageError(`key: ${path} cannot be read`);
  return found.key;
}

/**
 * Writes the audit lines this command noted as owed (owed-key-lines.ts): opening the audit log
 * writes them. Fails as audited() does when a line cannot be written; the note stays for the next
 * keyway start or command.
 */
async function writeOwedLines(services: Services, io: CommandIO): Promise<void> {
  try {
    await (await openAuditLog(services, io.env, { tableChain: `cli@${hostname()}` })).close();
  } catch (err) {
    const why = err instanceof KeywayError ? err.message : ((err as NodeJS.ErrnoException).code ?? 'an unexpected error');
    throw new KeywayError(
      'audit_invalid',
      `the audit line of this change could not be written (${why}); the change itself is made, and the next keyway start or command writes its line`,
    );
  }
}

async function rotateCommand(args: Args, io: CommandIO): Promise<number> {
  refuseGivenKey(io.env, 'rotate');
  const config = configFor(args, io);
  const { dataDir } = keywayPaths(config);
  const kms = config.store.key === 'file' ? undefined : config.store.key;
  if (config.store.backend === 'postgres') return rotateDatabase(args, io, kms);
  if (args.flag('plan')) {
    const records = (await servicesFor(args, io)).store.entries('').length;
    const how = kms ? `made and wrapped by ${kmsLabel(kms.kms, kms.key_id)}` : `written to ${join(dataDir, MASTER_KEY_FILENAME)}`;
    if (args.json) printJson(io, { plan: true, records, kms_key_id: kms?.key_id ?? null });
    else io.out(`would make a new master key (${how}) and seal the store's ${records} records again under it, in one write; the audit keys stay`);
    return 0;
  }
  // The store is opened under the lock: a rotation that ended while this one waited changed the key.
  const { services, oldKey, newKey } = await withKeyLock(dataDir, sayTo(io), async () => {
    const services = await servicesFor(args, io);
    const { store } = services;
    if (!(store instanceof Store)) throw usageError('key rotate: the file store only, for now');
    const oldKey = services.masterKey;
    // A pending key found here was left by a rotation that died before sealing the store (one that
    // died after it was promoted when the store was opened just now): it is dropped, never reused.
    await dropPending(dataDir);
    // 1. The audit keys, pinned as the old key gives them.
    if (store.get(AUDIT_KEYS_RECORD) === undefined) {
      await store.update((draft) => {
        draft.set(AUDIT_KEYS_RECORD, auditKeysRecord(oldKey, deriveAuditHeadKey));
      });
    }
    // 2. The new key, pending.
    const pending = pendingPaths(dataDir);
    let key: Buffer;
    if (kms) {
      const made = await (await kmsWrapper(kms, io.env)).generate();
      key = made.key;
      await writeNew(pending.wrapped, wrappedKeyText(made.ciphertext, made.keyId, kms.kms));
    } else {
      key = randomBytes(32);
      await writeNew(pending.plain, `${key.toString('base64')}\n`);
    }
    // 3. Every record sealed again; 4. the pending key made current.
    try {
      await store.rekey(key);
    } catch (err) {
      // The pending key is dropped only if the store still opens with the old one: a failure after
      // the sealed file was written (its directory's fsync) leaves the new key the only one that opens it.
      if (await opensWith(store.path, oldKey)) await dropPending(dataDir);
      throw err;
    }
    // Its key.rotate line is noted as owed first, so a kill from here on still leaves it written.
    await promotePending(dataDir, { actor: cliActor(io.env) });
    return { services, oldKey, newKey: key };
  });
  const count = services.store.entries('').length;
  await writeOwedLines(services, io);
  if (args.json) printJson(io, { rotated: true, records: count, fingerprint: keyFingerprint(newKey), previous: keyFingerprint(oldKey) });
  else io.out(`a new master key (fingerprint ${keyFingerprint(newKey)}) seals the store's ${count} records; the audit keys are unchanged`);
  return 0;
}

/**
 * keyway key rotate on PostgreSQL: the key is the one the database keeps wrapped (store.key: {kms}),
 * so every replica has it; the new one is made by the KMS, and every record is sealed again and the
 * wrapped key replaced in one transaction (PostgresStore.rotateKey). Replicas follow on their next read.
 */
async function rotateDatabase(args: Args, io: CommandIO, kms: KmsKeyConfig | undefined): Promise<number> {
  if (kms === undefined) {
    throw usageError(
      'key rotate: a PostgreSQL store is rotated when a KMS wraps its key (store.key: {kms: aws, key_id: …}), which every replica then reads from the database',
    );
  }
  const services = await servicesFor(args, io);
  const { store } = services;
  if (!(store instanceof PostgresStore)) throw usageError('key rotate: expected the PostgreSQL store');
  const records = store.entries('').length;
  if (args.flag('plan')) {
    if (args.json) printJson(io, { plan: true, records, kms_key_id: kms.key_id });
    else
      io.out(
        `would make a new master key (made and wrapped by ${kmsLabel(kms.kms, kms.key_id)}) and seal the database's ${records} records again under it, in one transaction; the audit keys stay`,
      );
    return 0;
  }
  const oldKey = services.masterKey;
  if (store.get(AUDIT_KEYS_RECORD) === undefined) {
    await store.update((draft) => {
      draft.set(AUDIT_KEYS_RECORD, auditKeysRecord(oldKey, deriveAuditHeadKey));
    });
  }
  const made = await (await kmsWrapper(kms, io.env)).generate();
  const count = await store.rotateKey(made.key, { kms: kms.kms, key_id: made.keyId, ciphertext: made.ciphertext.toString('base64') });
  await audited(services, io, { action: 'key.rotate', changed: ['master_key'] }, async () => undefined);
  if (args.json) printJson(io, { rotated: true, records: count, fingerprint: keyFingerprint(made.key), previous: keyFingerprint(oldKey) });
  else
    io.out(
      `a new master key (fingerprint ${keyFingerprint(made.key)}) seals the database's ${count} records; every replica follows; the audit keys are unchanged`,
    );
  return 0;
}

/** Where the key lock says it cleared a stale lock (a key command killed holding it): stderr. */
function sayTo(io: CommandIO): (line: string) => void {
  return (line) => io.err(line);
}

/** Whether the store file still opens with `key`. */
async function opensWith(path: string, key: Buffer): Promise<boolean> {
  try {
    (await Store.open(path, key)).close();
    return true;
  } catch {
    return false;
  }
}

/** A pending key file, made new (0600, synced); one already there is refused ('wx'): the key lock keeps rotations apart. */
async function writeNew(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
