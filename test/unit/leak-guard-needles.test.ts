import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redactAll, REDACTION, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';

// The encoded forms of the secret the leak guard redacts: an upstream that echoes a request back
// re-encoded (a byte dump in hex, a JSON document wrapped whole in base64, a URL quoting a query
// parameter) must not hand the agent the secret in another spelling.

const MARK = REDACTION.toString();
const token = (value: string) => secretNeedles({ kind: 'token', value });
const redact = (text: string, value = CANARY) => {
  const { output, count } = redactAll(Buffer.from(text, 'latin1'), token(value));
  return { text: output.toString('latin1'), count };
};

describe('the leak guard needles', () => {
  it('keeps its needles in one buffer of their own, not in slices of the shared Buffer pool (a kept slice holds the whole 64 KiB slab)', () => {
    const needles = token(`kw-pool-${randomBytes(20).toString('hex')}`);
    expect(needles.length).toBeGreaterThan(5);
    const backing = needles[0]!.buffer;
    for (const n of needles) expect(n.buffer).toBe(backing);
    expect(backing.byteLength).toBe(needles.reduce((sum, n) => sum + n.length, 0));
  });

  it('redacts the secret in hex, lower and upper case', () => {
    const hex = Buffer.from(CANARY).toString('hex');
    for (const form of [hex, hex.toUpperCase()]) {
      const r = redact(`dump: ${form} end`);
      expect(r).toEqual({ text: `dump: ${MARK} end`, count: 1 });
    }
  });

  it('redacts the secret base64-encoded on its own, standard and url-safe, padded or not', () => {
    const secret = 'kw+/canary?~~>>1'; // base64 of this has + and / in it
    const b64 = Buffer.from(secret).toString('base64');
    const url = b64.replace(/\+/g, '-').replace(/\//g, '_');
    expect(b64).toMatch(/[+/]/);
    for (const form of [b64, b64.replace(/=+$/, ''), url, url.replace(/=+$/, '')]) {
      const r = redact(`"value":"${form}"`, secret);
      expect(r.count, form).toBe(1);
      expect(r.text, form).toBe(`"value":"${MARK}"`);
    }
  });

  it('redacts the secret inside a larger base64 blob at every byte alignment, leaving at most one character of it at each end', () => {
    for (let prefix = 0; prefix < 9; prefix++) {
      for (const suffix of [0, 1, 2, 5]) {
        const blob = Buffer.concat([randomBytes(prefix), Buffer.from(`{"authorization":"Bearer ${CANARY}"}`), randomBytes(suffix)]);
        for (const alphabet of ['base64', 'base64url'] as const) {
          const encoded = blob.toString(alphabet);
          const r = redact(encoded);
          expect(r.count, `${alphabet} prefix ${prefix} suffix ${suffix}`).toBe(1);
          expect(findLeak(r.text, CANARY), `${alphabet} prefix ${prefix}`).toBeUndefined();
          // Where the secret's bits sit in the encoding: only a character straddling its first or
          // last byte (4 bits of the secret at most) may remain outside the marker.
          const at = blob.indexOf(CANARY);
          const firstChar = Math.floor((at * 8) / 6);
          const endChar = Math.ceil(((at + CANARY.length) * 8) / 6);
          const [before = '', after = ''] = r.text.split(MARK);
          expect(before.length).toBeGreaterThanOrEqual(firstChar);
          expect(before.length).toBeLessThanOrEqual(firstChar + 1);
          expect(encoded.length - after.length).toBeLessThanOrEqual(endChar);
          expect(encoded.length - after.length).toBeGreaterThanOrEqual(endChar - 1);
        }
      }
    }
  });

  it('redacts the percent-encoded and form-encoded secret when it has reserved characters, and its JSON form with escaped slashes', () => {
    const secret = 'sk/abc+def=ghi jk!';
    const cases = [
      encodeURIComponent(secret),
      encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (p) => p.toLowerCase()),
      new URLSearchParams({ k: secret }).toString().slice(2),
      secret.replace(/\//g, '\\/'),
    ];
    for (const form of cases) {
      const r = redact(`url=/x?key=${form}&y=1`, secret);
      expect(r, form).toEqual({ text: `url=/x?key=${MARK}&y=1`, count: 1 });
    }
  });

  it('redacts the Basic header value and the password in each form, never the user name alone', () => {
    const needles = secretNeedles({ kind: 'basic', username: 'leak-user', password: 'pw-9f8e7d6c5b' });
    const header = Buffer.from('leak-user:pw-9f8e7d6c5b').toString('base64');
    const text = `Basic ${header} decoded leak-user:pw-9f8e7d6c5b hex ${Buffer.from('pw-9f8e7d6c5b').toString('hex')} user leak-user`;
    const { output, count } = redactAll(Buffer.from(text), needles);
    expect(output.toString()).toBe(`Basic ${MARK} decoded leak-user:${MARK} hex ${MARK} user leak-user`);
    expect(count).toBe(3);
  });

  it('finds nothing to redact for a secret under 8 bytes, in any form (it would match ordinary text)', () => {
    expect(token('short')).toEqual([]);
    expect(secretNeedles({ kind: 'basic', username: 'u', password: 'pw' }).length).toBeGreaterThan(0); // base64 of u:pw is still one
  });

  it('gives each token its own needles, asked in turns (the last token is remembered, never handed to another)', () => {
    const first = `${CANARY}-first`;
    const second = `${CANARY}-second`;
    for (let round = 0; round < 3; round++) {
      for (const value of [first, second, second, first]) {
        const needles = token(value).map((n) => n.toString('latin1'));
        expect(needles[0]).toBe(value);
        expect(needles).toEqual(token(value).map((n) => n.toString('latin1')));
        const other = value === first ? second : first;
        expect(needles).not.toContain(other);
      }
    }
    expect(redact(`x ${first} y ${second}`, second).text).toBe(`x ${first} y ${MARK}`);
  });
});
