// The master key wrapped by a key-encryption key kept in a KMS (store.key: {kms: aws, key_id}):
// data/master.key.kms holds only the KMS's ciphertext of the key, so nothing on disk decrypts the
// store alone; each start asks the KMS to unwrap it (kms:Decrypt). The AWS SDK's KMS client is
// loaded only here, when a home uses it. Messages name the KMS key and the KMS's error, never a key.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KmsKeyConfig } from '../../config/secret-sources.ts';
import { awsClientSettings, awsReason } from '../sources/aws-client.ts';
import { KeywayError } from '../../errors/index.ts';

export const WRAPPED_KEY_FILENAME = 'master.key.kms';
const FORMAT = 'keyway-wrapped-key';

/** What data/master.key.kms holds: which KMS key wrapped the master key, and the ciphertext. */
export interface WrappedKeyFile {
  format: typeof FORMAT;
  version: 1;
  kms: 'aws' | 'vault_transit' | 'gcp';
  /** The KMS key's ARN as the KMS answered (the alias resolved). */
  key_id: string;
  /** base64 of the KMS ciphertext blob. */
  ciphertext: string;
  wrapped_at: string;
}

export interface KeyWrapper {
  /** The KMS key's id (ARN) it last used. */
  readonly describe: string;
  wrap(key: Buffer): Promise<{ ciphertext: Buffer; keyId: string }>;
  /** `keyId`: the key that wrapped it (as its file says); else store.key's. */
  unwrap(ciphertext: Buffer, keyId?: string): Promise<Buffer>;
  /** A new 32-byte key and its ciphertext, made by the KMS (GenerateDataKey, AES_256). */
  generate(): Promise<{ key: Buffer; ciphertext: Buffer; keyId: string }>;
}

export function wrappedKeyPath(dataDir: string): string {
  return join(dataDir, WRAPPED_KEY_FILENAME);
}

type AwsKms = Extract<KmsKeyConfig, { kms: 'aws' }>;
type VaultTransit = Extract<KmsKeyConfig, { kms: 'vault_transit' }>;

/** The wrapper store.key names: AWS KMS or Vault's transit engine. */
export function kmsWrapper(settings: KmsKeyConfig, env: NodeJS.ProcessEnv): Promise<KeyWrapper> {
  if (settings.kms === 'aws') return awsKmsWrapper(settings, env);
  if (settings.kms === 'gcp') return gcpKmsWrapper(settings, env);
  return vaultTransitWrapper(settings, env);
}

/**
 * Google Cloud KMS (POST /v1/KEY:encrypt and :decrypt, as a service account: sources/gcp-auth.ts).
 * It has no data-key call: a new master key is made here (32 random bytes) and sent only to be
 * wrapped.
 */
async function gcpKmsWrapper(settings: Extract<KmsKeyConfig, { kms: 'gcp' }>, env: NodeJS.ProcessEnv): Promise<KeyWrapper> {
  const { gcpServiceAccount } = await import('../sources/gcp-auth.ts');
  const { request } = await import('undici');
  const auth = gcpServiceAccount(settings.credentials, env, '/', 10_000);
  const endpoint = (settings.endpoint ?? 'https://cloudkms.googleapis.com').replace(/\/+$/, '');
  const call = async (keyId: string, verb: 'encrypt' | 'decrypt', body: Record<string, string>): Promise<Record<string, unknown>> => {
    const answer = await request(`${endpoint}/v1/${keyId}:${verb}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await auth.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const parsed = (await answer.body.json().catch(() => ({}))) as Record<string, unknown> & { error?: { status?: string; message?: string } };
    if (answer.statusCode !== 200) {
      if (answer.statusCode === 401) auth.forget();
      throw new Error(
        `Cloud KMS answered ${answer.statusCode}${parsed.error ? `: ${parsed.error.status ?? ''} ${(parsed.error.message ?? '').slice(0, 200)}`.trimEnd() : ''}`,
      );
    }
    return parsed;
  };
  const fail = (what: string, err: unknown) =>
    new KeywayError('master_key_invalid', `store.key: Cloud KMS key ${settings.key_id} could not ${what} the master key: ${(err as Error).message}`, {
      cause: err,
    });
  const wrap = async (key: Buffer) => {
    try {
      const answer = await call(settings.key_id, 'encrypt', { plaintext: key.toString('base64') });
      if (typeof answer['ciphertext'] !== 'string') throw new Error('the answer holds no ciphertext');
      return { ciphertext: Buffer.from(answer['ciphertext'], 'base64'), keyId: settings.key_id };
    } catch (err) {
      throw fail('wrap', err);
    }
  };
  return {
    describe: `Cloud KMS key ${settings.key_id}`,
    wrap,
    async unwrap(ciphertext, keyId = settings.key_id) {
      try {
        const key = Buffer.from(String((await call(keyId, 'decrypt', { ciphertext: ciphertext.toString('base64') }))['plaintext'] ?? ''), 'base64');
        if (key.length !== 32) throw new Error('the answer is not a 32-byte key');
        return key;
      } catch (err) {
        throw fail('unwrap', err);
      }
    },
    async generate() {
      const key = randomBytes(32);
      return { key, ...(await wrap(key)) };
    },
  };
}

/**
 * Vault's transit engine (POST /v1/MOUNT/datakey/plaintext/KEY, encrypt/KEY, decrypt/KEY): the
 * master key goes to Vault only to be wrapped, and comes back only to this process. References in
 * token/approle are read from keyway's environment or absolute files.
 */
async function vaultTransitWrapper(settings: VaultTransit, env: NodeJS.ProcessEnv): Promise<KeyWrapper> {
  const { vaultClient } = await import('../sources/vault-client.ts');
  const vault = vaultClient(settings, env, '/');
  const base = `${settings.mount}/`;
  const fail = (what: string, err: unknown) =>
    new KeywayError('master_key_invalid', `store.key: Vault transit key ${settings.key_id} could not ${what} the master key: ${(err as Error).message}`, {
      cause: err,
    });
  const signal = () => AbortSignal.timeout(10_000);
  const plaintextOf = (answer: Record<string, unknown>): Buffer => {
    const key = Buffer.from(String((answer['data'] as { plaintext?: string } | undefined)?.plaintext ?? ''), 'base64');
    if (key.length !== 32) throw new Error('the answer is not a 32-byte key');
    return key;
  };
  const ciphertextOf = (answer: Record<string, unknown>): Buffer => {
    const text = (answer['data'] as { ciphertext?: string } | undefined)?.ciphertext;
    if (typeof text !== 'string' || !text.startsWith('vault:')) throw new Error('the answer holds no ciphertext');
    return Buffer.from(text, 'utf8');
  };
  return {
    describe: `Vault transit key ${settings.key_id}`,
    async wrap(key) {
      try {
        return {
          ciphertext: ciphertextOf(await vault.call('POST', `${base}encrypt/${settings.key_id}`, signal(), { plaintext: key.toString('base64') })),
          keyId: settings.key_id,
        };
      } catch (err) {
        throw fail('wrap', err);
      }
    },
    async unwrap(ciphertext, keyId = settings.key_id) {
      try {
        return plaintextOf(await vault.call('POST', `${base}decrypt/${keyId}`, signal(), { ciphertext: ciphertext.toString('utf8') }));
      } catch (err) {
        throw fail('unwrap', err);
      }
    },
    async generate() {
      try {
        const answer = await vault.call('POST', `${base}datakey/plaintext/${settings.key_id}`, signal(), { bits: 256 });
        return { key: plaintextOf(answer), ciphertext: ciphertextOf(answer), keyId: settings.key_id };
      } catch (err) {
        throw fail('make', err);
      }
    },
  };
}

function kmsError(settings: AwsKms, what: string, err: unknown): KeywayError {
  return new KeywayError('master_key_invalid', `store.key: AWS KMS key ${settings.key_id} could not ${what} the master key: ${awsReason(err)}`, {
    cause: err,
  });
}

/** An AWS KMS wrapper for store.key's settings, signing with keyway's own environment's credentials (or the SDK's chain). */
export async function awsKmsWrapper(settings: AwsKms, env: NodeJS.ProcessEnv): Promise<KeyWrapper> {
  const { KMSClient, EncryptCommand, DecryptCommand, GenerateDataKeyCommand } = await import('@aws-sdk/client-kms');
  const client = new KMSClient({ ...awsClientSettings(settings, env), maxAttempts: 3 });
  const keyIdOf = (id: string | undefined) => id ?? settings.key_id;
  return {
    describe: `AWS KMS key ${settings.key_id}`,
    async wrap(key) {
      try {
        const out = await client.send(new EncryptCommand({ KeyId: settings.key_id, Plaintext: key }));
        if (!out.CiphertextBlob) throw new Error('no ciphertext in the answer');
        return { ciphertext: Buffer.from(out.CiphertextBlob), keyId: keyIdOf(out.KeyId) };
      } catch (err) {
        throw kmsError(settings, 'wrap', err);
      }
    },
    async unwrap(ciphertext, keyId = settings.key_id) {
      try {
        // KeyId given: KMS refuses a ciphertext of another key rather than decrypting it with that one.
        const out = await client.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext }));
        if (out.Plaintext?.length !== 32) throw new Error('the answer is not a 32-byte key');
        return Buffer.from(out.Plaintext);
      } catch (err) {
        throw kmsError(settings, 'unwrap', err);
      }
    },
    async generate() {
      try {
        const out = await client.send(new GenerateDataKeyCommand({ KeyId: settings.key_id, KeySpec: 'AES_256' }));
        if (!out.Plaintext || !out.CiphertextBlob || out.Plaintext.length !== 32) throw new Error('the answer holds no 32-byte key');
        return { key: Buffer.from(out.Plaintext), ciphertext: Buffer.from(out.CiphertextBlob), keyId: keyIdOf(out.KeyId) };
      } catch (err) {
        throw kmsError(settings, 'make', err);
      }
    },
  };
}

/** How messages name a key-encryption key. */
export function kmsLabel(kms: WrappedKeyFile['kms'], keyId: string): string {
  return `${kms === 'aws' ? 'AWS KMS key' : kms === 'gcp' ? 'Cloud KMS key' : 'Vault transit key'} ${keyId}`;
}

export function wrappedKeyText(ciphertext: Buffer, keyId: string, kms: WrappedKeyFile['kms'] = 'aws', now = new Date()): string {
  const file: WrappedKeyFile = {
    format: FORMAT,
    version: 1,
    kms,
    key_id: keyId,
    ciphertext: ciphertext.toString('base64'),
    wrapped_at: now.toISOString(),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** data/master.key.kms, read and checked; undefined when there is none. */
export async function readWrappedKey(dataDir: string, name = WRAPPED_KEY_FILENAME): Promise<WrappedKeyFile | undefined> {
  const path = join(dataDir, name);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeywayError('master_key_invalid', `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  let parsed: Partial<WrappedKeyFile>;
  try {
    parsed = JSON.parse(text) as Partial<WrappedKeyFile>;
  } catch {
    parsed = {};
  }
  if (
    parsed.format !== FORMAT ||
    (parsed.kms !== 'aws' && parsed.kms !== 'vault_transit' && parsed.kms !== 'gcp') ||
    typeof parsed.ciphertext !== 'string' ||
    typeof parsed.key_id !== 'string'
  ) {
    throw new KeywayError('master_key_invalid', `${path} is not a wrapped key keyway wrote (restore it from a backup)`);
  }
  return parsed as WrappedKeyFile;
}
