import { LRUCache } from 'lru-cache';
import { echoableSecrets, isSigningKey } from '../../credentials/echoable.ts';
import type { Credential } from '../../credentials/material.ts';

// The byte strings that would reveal a credential if an upstream echoed it back: the secret as
// sent, and the forms an echo commonly re-encodes it into (a debug page dumping bytes in hex, an
// API wrapping the request in base64 or a URL, a JSON encoder escaping slashes).

// Too short a secret would match ordinary text; real tokens and keys are far longer.
export const MIN_SECRET_LENGTH = 8;

/** The needles for one credential, remembered for the last few secrets. */
export function secretNeedles(credential: Credential): Buffer[] {
  // This runs on every intercepted request, and credentials are fresh objects each time: remember
  // the needles of the last few secrets (bounded, as OAuth tokens rotate for as long as keyway runs).
  if (isSigningKey(credential)) return signingNeedles(echoableSecrets(credential));
  // mtls: the private key never leaves keyway (TLS proves possession without sending it).
  if (credential.kind === 'none') return [];
  // A captured login: each real value put where its placeholder was, looked for as a token is.
  if (credential.kind === 'captured') return credential.values.flatMap((value) => secretNeedles({ kind: 'token', value }));
  // The token of the last request again (most are, and each is asked twice: its leak guard and the
  // held values): its needles without building the cache's key string. The value compared is the
  // whole secret, so another token never gets these needles.
  if (credential.kind === 'token' && credential.value === lastToken.value) return lastToken.needles;
  const key = credential.kind === 'token' ? `t\0${credential.value}` : `b\0${credential.username}\0${credential.password}`;
  let needles = needlesBySecret.get(key);
  if (!needles) {
    const secret = credential.kind === 'token' ? credential.value : credential.password;
    const forms = Buffer.byteLength(secret) >= MIN_SECRET_LENGTH ? encodedForms(Buffer.from(secret)) : [];
    // Basic: what goes on the wire is the base64 of user:password, a value of its own: it is looked
    // for in every form the password is (each byte escaped, \u-escaped, hex, base64 again, ...), not
    // only as sent. Unpadded: its forms are found inside the padded value's too.
    const pair = credential.kind === 'basic' ? Buffer.from(`${credential.username}:${credential.password}`) : undefined;
    const wire = pair === undefined ? undefined : Buffer.from(pair.toString('base64').replace(/=+$/, ''));
    if (pair !== undefined && wire !== undefined) forms.push(...base64Forms(pair), ...encodedForms(wire));
    needles = unpooled(dedupe(forms.filter((f) => f.length >= MIN_SECRET_LENGTH)));
    // The base64 forms: an encoder may wrap them in lines (leak-guard/breaks.ts).
    const base64 = new Set(
      [...base64Forms(Buffer.from(secret)), ...(pair !== undefined && wire !== undefined ? [...base64Forms(pair), ...base64Forms(wire)] : [])].map((f) =>
        f.toString('latin1'),
      ),
    );
    for (const n of needles) if (base64.has(n.toString('latin1'))) WRAPPABLE.add(n);
    needlesBySecret.set(key, needles);
  }
  if (credential.kind === 'token') lastToken = { value: credential.value, needles };
  return needles;
}

let lastToken: { readonly value: string | undefined; readonly needles: Buffer[] } = { value: undefined, needles: [] };

const needlesBySecret = new LRUCache<string, Buffer[]>({ max: 256 });

/** A credential's needles and those of signatures keyway made for this one request (a presigned URL's). */
export function withSignatures(needles: Buffer[], signatures: readonly string[] | undefined): Buffer[] {
  if (signatures === undefined || signatures.length === 0) return needles;
  const own = signatures.flatMap((signature) => unpooled(dedupe(encodedForms(Buffer.from(signature)).filter((f) => f.length >= MIN_SECRET_LENGTH))));
  return [...needles, ...own];
}

/**
 * A signing key's needles: those of each of its secrets an answer could echo (echoableSecrets), as
 * a token's. None at all (a key that only signs): answers are relayed unscanned.
 */
function signingNeedles(secrets: readonly string[]): Buffer[] {
  if (secrets.length === 0) return NO_NEEDLES;
  return [...new Set(secrets.flatMap((secret) => secretNeedles({ kind: 'token', value: secret })))];
}

const NO_NEEDLES: Buffer[] = [];

/** The needles (of secretNeedles) that are base64, which an encoder may break into lines: searched across line breaks too. */
export const WRAPPABLE = new WeakSet<Buffer>();

/**
 * The needles copied into one buffer of their own. A small Buffer.from() is a slice of Node's shared
 * 64 KiB pool, and a kept slice keeps its whole slab alive for as long as the secret is remembered.
 */
export function unpooled(needles: readonly Buffer[]): Buffer[] {
  let total = 0;
  for (const n of needles) total += n.length;
  const backing = Buffer.allocUnsafeSlow(total);
  let at = 0;
  return needles.map((n) => {
    n.copy(backing, at);
    at += n.length;
    return backing.subarray(at - n.length, at);
  });
}

/**
 * The secret and its encoded forms:
 * - hex, lower and upper case (a byte dump);
 * - base64 and base64url, padded and not (the secret encoded on its own, as Basic does), and the
 *   stable core of its encoding at each of the three byte alignments it can have inside a larger
 *   base64 blob (a JWT or a JSON document wrapped whole). At an alignment other than zero the first
 *   and last characters mix in neighbouring bytes, so only the characters made of the secret's own
 *   bits are a fixed string: at most one character (six bits, four of them the secret's) stays at
 *   each end of a redacted run, which reveals nothing usable;
 * - percent-encoded (upper and lower hex) and form-encoded (how a query parameter carries it), when
 *   the secret has characters a URL escapes; and with every byte escaped (either case);
 * - every UTF-16 unit \u-escaped (either case);
 * - inside a JSON string (a quote, a backslash, a control character escaped), when that differs
 *   from the secret; with escaped slashes (PHP's default) too, when the secret has a slash;
 * - the secret's text in UTF-16, little- and big-endian (a text saved or answered in UTF-16, with a
 *   byte-order mark or without: a mark is before the text, so the needle is the same). A UTF-16
 *   code unit is two bytes wherever the text starts, so the needle is one fixed byte string;
 * - base32 (RFC 4648 6), in upper and lower case, padded and not, and its stable core at each of
 *   the five byte alignments it can have inside a larger base32 blob (as base64's, below).
 * The base64 forms are also found wrapped in lines (WRAPPABLE, leak-guard/breaks.ts).
 * Doubly encoded forms (base64 of hex, UTF-16 of base64, ...) are not covered: each layer would
 * multiply the needles; nor base32hex (RFC 4648 7), which no echo keyway knows of writes.
 */
export function encodedForms(secret: Buffer): Buffer[] {
  const text = secret.toString('utf8');
  const hex = secret.toString('hex');
  const forms = [text, hex, hex.toUpperCase()];
  const percent = encodeURIComponent(text);
  if (percent !== text)
    forms.push(
      percent,
      percent.replace(/%[0-9A-F]{2}/g, (p) => p.toLowerCase()),
    );
  // As a query injector writes it (form encoding: a space is '+', and !'()~ are escaped too).
  const form = new URLSearchParams({ s: text }).toString().slice(2);
  if (form !== text) forms.push(form);
  // Every character but RFC 3986's unreserved ones escaped (Python's urllib.parse.quote, Go's
  // QueryEscape), and so with '/' kept (quote's default): a secret with '/' and '+' (cloud access keys) is
  // neither of the forms above then. Either case; dedupe drops those equal to another form.
  for (const keep of ['', '/']) {
    const quoted = quoteRfc3986(text, keep);
    if (quoted !== text)
      forms.push(
        quoted,
        quoted.replace(/%[0-9A-F]{2}/g, (p) => p.toLowerCase()),
      );
  }
  // Every byte escaped, as an encoder that escapes all it writes does (unreserved characters too).
  const everyByte = hex.toUpperCase().replace(/../g, '%$&');
  forms.push(everyByte, everyByte.toLowerCase());
  // Every UTF-16 unit as \uXXXX (a JSON or JavaScript encoder told to emit ASCII only, at its most).
  const unicode = Array.from({ length: text.length }, (_, i) => `\\u${text.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
  forms.push(
    unicode,
    unicode.replace(/\\u([0-9a-f]{4})/g, (_, h: string) => `\\u${h.toUpperCase()}`),
  );
  // Inside a JSON string: a quote, a backslash or a control character escaped; and slashes too.
  const json = JSON.stringify(text).slice(1, -1);
  if (json !== text) forms.push(json);
  if (text.includes('/')) forms.push(text.replaceAll('/', '\\/'), json.replaceAll('/', '\\/'));
  const utf16 = Buffer.from(text, 'utf16le');
  return [...forms.map((f) => Buffer.from(f)), utf16, Buffer.from(utf16).swap16(), ...base64Forms(secret), ...base32Forms(secret)];
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 of `bytes`, padded to a multiple of eight characters. */
export function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out.padEnd(Math.ceil(out.length / 8) * 8, '=');
}

/**
 * base32 on its own (padded, unpadded) and the characters that depend on the secret's bytes only
 * when it starts `align` bytes past a 5-byte group of a larger blob (neighbours zero, cut away), in
 * upper and lower case (decoders take either; an echo of `Bearer <token>` puts the token at
 * alignment 2). The lower-case forms are needles of common letters and digits, searched slowly
 * (figures: docs/perf/README.md, "Leak guard search").
 */
function base32Forms(secret: Buffer): Buffer[] {
  const padded = base32(secret);
  const alone = [padded, padded.replace(/=+$/, '')];
  const cores: string[] = [];
  for (let align = 0; align < 5; align++) {
    const encoded = base32(Buffer.concat([Buffer.alloc(align), secret, Buffer.alloc(4)]));
    cores.push(encoded.slice(Math.ceil((align * 8) / 5), Math.floor(((align + secret.length) * 8) / 5)));
  }
  const upper = [...alone, ...cores];
  return [...upper, ...upper.map((f) => f.toLowerCase())].map((f) => Buffer.from(f));
}
/** `text` percent-encoded (UTF-8, upper-case hex) but for RFC 3986's unreserved characters and those in `keep`. */
function quoteRfc3986(text: string, keep: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => (keep.includes(c) ? c : `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .replace(/%2F/g, keep.includes('/') ? '/' : '%2F');
}

/** base64 and base64url: on its own (padded, unpadded) and the stable core at each alignment. */
function base64Forms(secret: Buffer): Buffer[] {
  const padded = secret.toString('base64');
  const forms = [padded, padded.replace(/=+$/, '')];
  for (let align = 0; align < 3; align++) forms.push(base64Core(secret, align));
  forms.push(...forms.filter((f) => /[+/]/.test(f)).map(toBase64Url));
  return forms.map((f) => Buffer.from(f));
}

/**
 * The characters of base64 that depend on the secret's bytes only, when the secret starts `align`
 * bytes past a 3-byte group boundary of a larger encoded blob (neighbouring bytes set to zero,
 * then cut away).
 */
function base64Core(secret: Buffer, align: number): string {
  const encoded = Buffer.concat([Buffer.alloc(align), secret, Buffer.alloc(2)]).toString('base64');
  const firstBit = align * 8;
  const endBit = firstBit + secret.length * 8;
  return encoded.slice(Math.ceil(firstBit / 6), Math.floor(endBit / 6));
}

const toBase64Url = (b64: string) => b64.replaceAll('+', '-').replaceAll('/', '_');

function dedupe(needles: readonly Buffer[]): Buffer[] {
  const seen = new Set<string>();
  return needles.filter((n) => {
    const key = n.toString('latin1');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
