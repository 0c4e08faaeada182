// Where the store's master key comes from, in order: KEYWAY_MASTER_KEY (base64 of 32 bytes), the file
// named by KEYWAY_MASTER_KEY_FILE (base64 text or 32 raw bytes), dataDir/master.key.kms unwrapped by
// the KMS that store.key names (key-wrap.ts), or dataDir/master.key; generated on first use (by the
// KMS, wrapped, with store.key: {kms: …}). Error messages name the source and what was expected, never the value: a "key" that
// fails validation is often a real secret pasted into the wrong variable.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywayError } from '../../errors/index.ts';
import type { StoreKeyConfig } from '../../config/secret-sources.ts';
import { kmsLabel, kmsWrapper, readWrappedKey, wrappedKeyPath, wrappedKeyText } from './key-wrap.ts';
import { removePlainCopy } from './rewrap-finish.ts';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILENAME = 'master.key';

export type MasterKeySource = 'env' | 'file' | 'generated' | 'existing' | 'kms';

export interface MasterKey {
  key: Buffer;
  source: MasterKeySource;
}

export interface LoadMasterKeyOptions {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** The config's store.key: `file` (absent: the same) or the KMS that wraps the key. */
  wrap?: StoreKeyConfig | undefined;
}

const EXPECTED = `base64 of exactly ${MASTER_KEY_BYTES} bytes`;

/** Strict base64 (standard or URL-safe, padding optional) of exactly 32 bytes, else undefined. */
function decodeBase64Key(text: string): Buffer | undefined {
  const s = text.trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  // Buffer.from(…, 'base64') skips characters it does not know; check the alphabet first so typos fail.
  if (!/^[A-Za-z0-9+/]+$/.test(s)) return undefined;
  const key = Buffer.from(s, 'base64');
  if (key.length !== MASTER_KEY_BYTES) return undefined;
  // Reject non-canonical trailing bits, so only one spelling of each key is accepted.
  if (key.toString('base64').replace(/=+$/, '') !== s) return undefined;
  return key;
}

/** A key file holds either base64 text or the 32 raw bytes (raw bytes are never 43+ characters long). */
function decodeKeyFile(bytes: Buffer): Buffer | undefined {
  if (bytes.length === MASTER_KEY_BYTES) return Buffer.from(bytes);
  return decodeBase64Key(bytes.toString('latin1'));
}

function invalid(source: string, detail: string, cause?: unknown): KeywayError {
  return new KeywayError('master_key_invalid', `${source} ${detail}`, cause === undefined ? undefined : { cause });
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

async function readKeyFile(path: string, source: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw invalid(source, `(${path}) cannot be read (${errnoCode(err) ?? 'error'})`, err);
  }
  const key = decodeKeyFile(bytes);
  if (key === undefined) {
    throw invalid(source, `(${path}) does not hold a valid key: expected ${EXPECTED}, or ${MASTER_KEY_BYTES} raw bytes`);
  }
  return key;
}

/**
 * Makes dataDir/master.key with 'wx' so that, of two processes starting at once, exactly one creates
 * it; the other gets EEXIST and uses the winner's key instead of making a second, different one.
 */
async function generateKeyFile(dataDir: string, path: string): Promise<MasterKey | undefined> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(MASTER_KEY_BYTES);
  let handle: FileHandle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return undefined;
    throw invalid(MASTER_KEY_FILENAME, `(${path}) cannot be created (${errnoCode(err) ?? 'error'})`, err);
  }
  try {
    await handle.writeFile(`${key.toString('base64')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { key, source: 'generated' };
}

/**
 * Reads a master.key another process may have just created with 'wx' and not yet written: an empty
 * or short file is given a moment to fill in before it is declared invalid.
 */
async function readExistingKeyFile(path: string): Promise<Buffer> {
  const deadline = Date.now() + 2000;
  for (;;) {
    try {
      return await readKeyFile(path, MASTER_KEY_FILENAME);
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      const size = await readFile(path).then(
        (b) => b.length,
        () => -1,
      );
      // Only a file still being written (shorter than any valid key) is worth waiting for.
      if (size < 0 || size >= MASTER_KEY_BYTES) throw err;
      await sleep(20);
    }
  }
}

export async function loadMasterKey(opts: LoadMasterKeyOptions): Promise<MasterKey> {
  const found = await findMasterKey(opts);
  if (found !== undefined) return found;
  if (opts.wrap !== undefined && opts.wrap !== 'file') return generateWrapped(opts);
  const path = join(opts.dataDir, MASTER_KEY_FILENAME);
  return (await generateKeyFile(opts.dataDir, path)) ?? { key: await readExistingKeyFile(path), source: 'existing' };
}

/**
 * The key from the environment, the key file or data/master.key, or undefined when there is none
 * yet (loadMasterKey would generate it): for commands that must not make a key nobody asked for.
 */
export async function findMasterKey(opts: LoadMasterKeyOptions): Promise<MasterKey | undefined> {
  const env = opts.env ?? process.env;

  const fromEnv = env.KEYWAY_MASTER_KEY;
  if (fromEnv !== undefined) {
    // An empty value is usually an unset variable in a compose file; generating a new key instead
    // would silently create a store nobody else can open.
    if (fromEnv.trim() === '') throw invalid('KEYWAY_MASTER_KEY', `is set but empty; expected ${EXPECTED}`);
    const key = decodeBase64Key(fromEnv);
    if (key === undefined) throw invalid('KEYWAY_MASTER_KEY', `is not a valid key; expected ${EXPECTED}`);
    return { key, source: 'env' };
  }

  const keyFile = env.KEYWAY_MASTER_KEY_FILE;
  if (keyFile !== undefined) {
    if (keyFile.trim() === '') throw invalid('KEYWAY_MASTER_KEY_FILE', 'is set but empty; expected a file path');
    return { key: await readKeyFile(keyFile, 'KEYWAY_MASTER_KEY_FILE'), source: 'file' };
  }

  const wrapped = await readWrappedKey(opts.dataDir);
  const kms = opts.wrap !== undefined && opts.wrap !== 'file' ? opts.wrap : undefined;
  if (wrapped !== undefined) {
    if (kms === undefined) {
      throw invalid(
        wrappedKeyPath(opts.dataDir),
        `holds the master key wrapped by ${kmsLabel(wrapped.kms, wrapped.key_id)}: set store.key: {kms: ${wrapped.kms}, key_id: ${wrapped.key_id}, …} in the config`,
      );
    }
    const wrapper = await kmsWrapper(kms, env);
    const key = await wrapper.unwrap(Buffer.from(wrapped.ciphertext, 'base64'), wrapped.key_id);
    // Both files: a rewrap killed before it removed the plain one is finished here (rewrap-finish.ts).
    const plainPath = join(opts.dataDir, MASTER_KEY_FILENAME);
    if (existsSync(plainPath)) {
      const plainKey = await readKeyFile(plainPath, MASTER_KEY_FILENAME).catch(() => undefined);
      await removePlainCopy(opts.dataDir, { plainPath, plainKey, key, ciphertext: wrapped.ciphertext, wrappedPath: wrappedKeyPath(opts.dataDir) }, 'open');
    }
    return { key, source: 'kms' };
  }
  const path = join(opts.dataDir, MASTER_KEY_FILENAME);
  if (kms !== undefined && existsSync(path)) {
    throw invalid(
      'store.key',
      `names ${kmsLabel(kms.kms, kms.key_id)}, and ${path} still holds the master key in plain: run \`keyway key rewrap\` to wrap it there (it removes the plain file)`,
    );
  }
  try {
    return { key: await readExistingKeyFile(path), source: 'existing' };
  } catch (err) {
    const missing = err instanceof KeywayError && errnoCode(err.cause) === 'ENOENT';
    if (!missing) throw err;
  }
  return undefined;
}

/**
 * A new master key made by the KMS (GenerateDataKey), its ciphertext put in place as
 * master.key.kms whole or not at all: written to a temporary file, synced, then linked to the name
 * (link fails if the name exists). Of two first starts, one links and the other unwraps the
 * winner's; a crash leaves a temporary file, never a half-written key.
 */
async function generateWrapped(opts: LoadMasterKeyOptions): Promise<MasterKey> {
  const kms = opts.wrap as Exclude<StoreKeyConfig, 'file'>;
  const wrapper = await kmsWrapper(kms, opts.env ?? process.env);
  const made = await wrapper.generate();
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const path = wrappedKeyPath(opts.dataDir);
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(wrappedKeyText(made.ciphertext, made.keyId, kms.kms));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, path);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw invalid(path, `cannot be created (${errnoCode(err) ?? 'error'})`, err);
    const found = await findMasterKey(opts);
    if (found === undefined) throw invalid(path, 'was made by another process and cannot be read; start again');
    return found;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return { key: made.key, source: 'generated' };
}
