// The on-disk format of the encrypted store, version 1:
//
//   { "format": "keyway-store", "version": 1, "cipher": "aes-256-gcm",
//     "check": { "n", "c", "t" },
//     "records": { "<id>": { "n": nonce b64, "c": ciphertext b64, "t": tag b64 } } }
//
// Each record is sealed on its own so a write re-seals only what changed. The record id is bound into
// the AAD, so a ciphertext copied or moved to another id does not open. `check` seals a known constant:
// if it does not open, the key is wrong; if it opens but a record does not, the file is damaged. That is
// the difference between "use the right key" and "restore a backup", and users need to be told which.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deepFreeze } from '../../deep-freeze.ts';
import { KeywayError } from '../../errors/index.ts';

export const FORMAT_NAME = 'keyway-store';
export const FORMAT_VERSION = 1;
export const CIPHER = 'aes-256-gcm';
export const CHECK_ID = '__check__';

const CHECK_VALUE = 'keyway-store-check';
const AAD_PREFIX = 'keyway-store/v1/';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** One sealed value: nonce, ciphertext and GCM tag, each base64. */
export interface SealedRecord {
  n: string;
  c: string;
  t: string;
}

export interface StoreFile {
  format: typeof FORMAT_NAME;
  version: typeof FORMAT_VERSION;
  cipher: typeof CIPHER;
  check: SealedRecord;
  records: Record<string, SealedRecord>;
}

/** A decrypted record kept next to its sealed form, so an unchanged record is written back as-is. */
export interface OpenedRecord {
  value: unknown;
  sealed: SealedRecord;
}

/** A whole store, decrypted. */
export interface OpenedStore {
  check: SealedRecord;
  records: Map<string, OpenedRecord>;
}

function assertKey(key: Buffer): void {
  // A programming error, not a user one: loadMasterKey() only ever returns 32-byte keys.
  if (key.length !== KEY_BYTES) throw new RangeError(`store key must be ${KEY_BYTES} bytes, got ${key.length}`);
}

function aad(id: string): Buffer {
  return Buffer.from(AAD_PREFIX + id, 'utf8');
}

/** Seals a JSON-compatible value under `id` with a fresh random nonce (never reused: GCM breaks if it is). */
export function seal(key: Buffer, id: string, value: unknown): SealedRecord {
  assertKey(key);
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`store record ${id}: value is not JSON-serialisable`);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(id));
  const ciphertext = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
  return { n: nonce.toString('base64'), c: ciphertext.toString('base64'), t: cipher.getAuthTag().toString('base64') };
}

/** Opens a sealed record; returns undefined when it does not authenticate (wrong key, wrong id, damage). */
export function unseal(key: Buffer, id: string, sealed: SealedRecord): { value: unknown } | undefined {
  assertKey(key);
  try {
    const decipher = createDecipheriv(CIPHER, key, Buffer.from(sealed.n, 'base64'), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(id));
    decipher.setAuthTag(Buffer.from(sealed.t, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(sealed.c, 'base64')), decipher.final()]);
    return { value: JSON.parse(plain.toString('utf8')) as unknown };
  } catch {
    return undefined;
  }
}

/** Every record and the check sealed again under `key` (keyway key rotate): the same values, new ciphertexts. */
export function resealStore(store: OpenedStore, key: Buffer): OpenedStore {
  const records = new Map<string, OpenedRecord>();
  for (const [id, record] of store.records) records.set(id, { value: record.value, sealed: seal(key, id, record.value) });
  return { check: seal(key, CHECK_ID, CHECK_VALUE), records };
}

/** A new store holding no records. */
export function emptyStore(key: Buffer): OpenedStore {
  return { check: seal(key, CHECK_ID, CHECK_VALUE), records: new Map() };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isSealed(v: unknown): v is SealedRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  if (typeof r.n !== 'string' || typeof r.c !== 'string' || typeof r.t !== 'string') return false;
  return canonicalBase64(r.n, NONCE_BYTES) && canonicalBase64(r.c) && canonicalBase64(r.t, TAG_BYTES);
}

/**
 * Base64 as Buffer.toString writes it and nothing else: Buffer.from ignores the unused low bits of
 * the last character, so without this a flipped bit there would decode to the same bytes unnoticed.
 */
function canonicalBase64(text: string, bytes?: number): boolean {
  if (!BASE64.test(text)) return false;
  const decoded = Buffer.from(text, 'base64');
  return decoded.toString('base64') === text && (bytes === undefined || decoded.length === bytes);
}

function corrupt(path: string, what: string): KeywayError {
  return new KeywayError('store_corrupt', `the store ${path} is damaged: ${what}; restore it from a backup`);
}

/** Parses and shape-checks the file text, without any key. Throws store_corrupt. */
export function parseStoreFile(path: string, text: string): StoreFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new KeywayError('store_corrupt', `the store ${path} is damaged: not valid JSON; restore it from a backup`, {
      cause,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw corrupt(path, 'not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.format !== FORMAT_NAME) throw corrupt(path, `"format" is not "${FORMAT_NAME}"`);
  if (d.version !== FORMAT_VERSION) {
    // Most likely written by a newer keyway; say so rather than guessing at its layout.
    throw new KeywayError('store_corrupt', `the store ${path} has format version ${JSON.stringify(d.version)}; this keyway reads version ${FORMAT_VERSION}`);
  }
  if (d.cipher !== CIPHER) throw corrupt(path, `"cipher" is not "${CIPHER}"`);
  if (!isSealed(d.check)) throw corrupt(path, `"check" is not a sealed record`);
  const records = d.records;
  if (typeof records !== 'object' || records === null || Array.isArray(records)) {
    throw corrupt(path, `"records" is not an object`);
  }
  for (const [id, sealed] of Object.entries(records)) {
    if (id === CHECK_ID) throw corrupt(path, `record id ${CHECK_ID} is reserved`);
    if (!isSealed(sealed)) throw corrupt(path, `record ${JSON.stringify(id)} is not a sealed record`);
  }
  return doc as StoreFile;
}

function sameSealed(a: SealedRecord | undefined, b: SealedRecord): boolean {
  return a !== undefined && a.n === b.n && a.c === b.c && a.t === b.t;
}

/**
 * Decrypts a parsed file. `previous` is what this process last opened: a record whose sealed bytes are
 * identical under the same id was already authenticated, so its value is reused instead of decrypted
 * again, which keeps the re-read that every update() does cheap.
 */
export function openStoreFile(path: string, key: Buffer, file: StoreFile, previous?: OpenedStore): OpenedStore {
  if (!sameSealed(previous?.check, file.check) && unseal(key, CHECK_ID, file.check)?.value !== CHECK_VALUE) {
    // A record that opens proves the key right: then it is the check record that is damaged.
    if (Object.entries(file.records).some(([id, sealed]) => unseal(key, id, sealed) !== undefined)) {
      throw corrupt(path, 'the "check" record does not decrypt, though the records do');
    }
    throw new KeywayError(
      'store_wrong_key',
      `the master key does not open ${path}; set KEYWAY_MASTER_KEY / KEYWAY_MASTER_KEY_FILE to the key it was made with`,
    );
  }
  const records = new Map<string, OpenedRecord>();
  for (const [id, sealed] of Object.entries(file.records)) {
    const known = previous?.records.get(id);
    if (known !== undefined && sameSealed(known.sealed, sealed)) {
      records.set(id, known);
      continue;
    }
    const opened = unseal(key, id, sealed);
    if (opened === undefined) throw corrupt(path, `record ${JSON.stringify(id)} does not decrypt`);
    records.set(id, { value: deepFreeze(opened.value), sealed });
  }
  return { check: file.check, records };
}

/** Serialises a store; records are sorted by id so the file is stable and diffable. */
export function serializeStore(store: OpenedStore): string {
  return render(
    store.check,
    [...store.records].map(([id, rec]) => [id, rec.sealed]),
  );
}

/** The one layout keyway writes. Sealed records are rebuilt field by field so nothing else rides along. */
function render(check: SealedRecord, entries: Array<[string, SealedRecord]>): string {
  // A null-prototype object, so a record named "__proto__" is stored as data, not as the prototype.
  const records = Object.create(null) as Record<string, SealedRecord>;
  for (const [id, s] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) records[id] = { n: s.n, c: s.c, t: s.t };
  const file: StoreFile = { format: FORMAT_NAME, version: FORMAT_VERSION, cipher: CIPHER, check: { n: check.n, c: check.c, t: check.t }, records };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Parses, decrypts and then insists that the text is exactly what keyway would write for what it
 * holds. Decryption catches a changed value; this catches every change that decrypts the same:
 * whitespace, key order, escapes, and above all a duplicate key (a flipped bit can turn one record
 * id into another, and JSON.parse silently keeps only the last of the two).
 */
export function readStoreText(path: string, key: Buffer, text: string, previous?: OpenedStore): OpenedStore {
  const file = parseStoreFile(path, text);
  const opened = openStoreFile(path, key, file, previous);
  if (render(file.check, Object.entries(file.records)) !== text) {
    throw corrupt(path, 'its bytes are not the layout keyway writes (changed outside keyway)');
  }
  return opened;
}
