import { KeywayError } from '../../../../errors/index.ts';
import { HmacSignError } from './errors.ts';

// An hmac grant's secret material, as `keyway secrets set ID` takes it (camelCase or snake_case).

export interface HmacMaterial {
  /** The shared secret, as the API hands it out (read per the scheme's key_encoding). */
  key: string;
  /** The public key id the API matches the secret by (Binance's API key, Kraken's API-Key …). */
  keyId?: string | undefined;
  passphrase?: string | undefined;
}

export type KeyEncoding = 'utf8' | 'base64' | 'hex';

/**
 * Reads material typed or piped by a person (JSON text, or already parsed). Throws a message that never quotes the input, since
 * the input is the secret.
 */
export function parseHmacMaterial(input: unknown): HmacMaterial {
  if (typeof input === 'string') {
    try {
      input = JSON.parse(input);
    } catch {
      throw new KeywayError('usage', 'an hmac secret is a JSON object {"key", "keyId"?, "passphrase"?}');
    }
  }
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw new KeywayError('usage', 'an hmac secret is a JSON object {"key", "keyId"?, "passphrase"?}');
  const record = input as Record<string, unknown>;
  const known = new Set(['key', 'keyId', 'key_id', 'passphrase']);
  const unknown = Object.keys(record).filter((name) => !known.has(name));
  if (unknown.length > 0) throw new KeywayError('usage', `an hmac secret takes key, keyId and passphrase; unknown: ${unknown.join(', ')}`);
  const key = record['key'];
  if (typeof key !== 'string' || key.trim() === '') throw new KeywayError('usage', 'an hmac secret needs "key", a non-empty string');
  const keyId = record['keyId'] ?? record['key_id'];
  if (keyId !== undefined && (typeof keyId !== 'string' || keyId === '')) throw new KeywayError('usage', '"keyId" must be a non-empty string');
  const passphrase = record['passphrase'];
  if (passphrase !== undefined && (typeof passphrase !== 'string' || passphrase === ''))
    throw new KeywayError('usage', '"passphrase" must be a non-empty string');
  return { key, keyId: keyId as string | undefined, passphrase: passphrase as string | undefined };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** Why `key` cannot be read as `encoding`, or undefined when it can. Never quotes the key. */
export function keyEncodingProblem(key: string, encoding: KeyEncoding): string | undefined {
  const text = key.trim();
  if (encoding === 'base64' && !BASE64.test(text)) return 'the key is not valid base64, yet the scheme reads it as base64';
  if (encoding === 'hex' && !HEX.test(text)) return 'the key is not an even number of hex digits, yet the scheme reads it as hex';
  return undefined;
}

/**
 * The key's bytes. Buffer.from would quietly skip characters that are not base64 or hex and sign
 * with a different key, so a key that does not parse is refused instead.
 */
export function decodeKey(key: string, encoding: KeyEncoding): Buffer {
  const problem = keyEncodingProblem(key, encoding);
  if (problem) throw new HmacSignError('grant_no_secret', `${problem}; set the right key with keyway secrets set`);
  if (encoding === 'utf8') return Buffer.from(key, 'utf8');
  return Buffer.from(key.trim(), encoding === 'hex' ? 'hex' : 'base64');
}
