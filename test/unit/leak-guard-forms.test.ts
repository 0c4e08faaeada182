import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redactAll, redactText, REDACTION, SecretScanner, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';

// The forms a standard encoder emits that once passed the leak guard: base64 wrapped in lines,
// every byte percent-encoded, every character \u-escaped, a JSON string's escapes; and a needle cut
// at the edge of a body (a Range window, a truncated echo).

const MARK = REDACTION.toString();
/** A secret with the characters JSON and URLs escape. */
const AWKWARD = 'kw"canary\\7f/3a9c+1e=5b2d';
const redact = (text: string, secret = CANARY) => {
  const { output, count } = redactAll(Buffer.from(text, 'latin1'), secretNeedles({ kind: 'token', value: secret }));
  return { text: output.toString('latin1'), count };
};

/** base64 wrapped as an encoder does: a break after every `width` characters. */
const wrap = (b64: string, width: number, eol: string) => b64.replace(new RegExp(`.{${width}}(?=.)`, 'g'), `$&${eol}`);

describe('the leak guard on forms a standard encoder emits', () => {
  it.each([
    ['MIME (76, CRLF)', 76, '\r\n'],
    ['PEM (64, LF)', 64, '\n'],
    ["GitHub's contents API (60, LF)", 60, '\n'],
  ])('redacts base64 wrapped in lines, %s, wherever the break falls in the secret', (_name, width, eol) => {
    // Shifting the secret one byte at a time through a whole line puts every character of its
    // encoding (at each of the three byte alignments) next to a break.
    for (let shift = 0; shift < width; shift++) {
      const blob = Buffer.concat([randomBytes(shift), Buffer.from(`{"authorization":"Bearer ${CANARY}"}\n`), randomBytes(40)]);
      for (const alphabet of ['base64', 'base64url'] as const) {
        const text = wrap(blob.toString(alphabet), width, eol);
        const r = redact(text);
        expect(findLeak(r.text, CANARY), `${alphabet} shift ${shift}`).toBeUndefined();
        expect(r.count, `${alphabet} shift ${shift}`).toBe(1);
      }
    }
  });

  it('redacts a long secret (two or three line breaks in its base64) wrapped at 60, 64 and 76', () => {
    const long = `kw-long-${'0123456789abcdef'.repeat(6)}-end`; // 107 bytes: ~143 characters of base64
    for (const [width, eol] of [
      [60, '\n'],
      [64, '\n'],
      [76, '\r\n'],
    ] as const) {
      for (let shift = 0; shift < width; shift += 7) {
        const blob = Buffer.concat([Buffer.alloc(shift, 0x41), Buffer.from(`{"k":"${long}"}`)]);
        const r = redact(wrap(blob.toString('base64'), width, eol), long);
        expect(findLeak(r.text, long), `width ${width} shift ${shift}`).toBeUndefined();
        expect(r.count, `width ${width} shift ${shift}`).toBe(1);
      }
    }
  });

  it('redacts the secret base64-encoded on its own and wrapped, padding after the break included', () => {
    const secret = `${CANARY}-x`; // 24 bytes: 32 characters, no padding; and one with padding
    for (const s of [secret, `${secret}y`]) {
      const b64 = Buffer.from(s).toString('base64');
      for (let at = 1; at < b64.length; at++) {
        const r = redact(`key:\n${b64.slice(0, at)}\r\n${b64.slice(at)}\nend`, s);
        expect(r, `break at ${at}`).toEqual({ text: `key:\n${MARK}\nend`, count: 1 });
      }
    }
  });

  it('redacts every byte percent-encoded, in upper and lower case hex, unreserved characters too', () => {
    const forms = canaryForms(CANARY);
    for (const name of ['percent, every byte', 'percent, every byte, lower'] as const) {
      expect(redact(`GET /?t=${forms[name]}&x=1`)).toEqual({ text: `GET /?t=${MARK}&x=1`, count: 1 });
    }
  });

  it('redacts every character \\u-escaped, in either hex case', () => {
    const forms = canaryForms(CANARY);
    for (const name of ['unicode escapes', 'unicode escapes, upper'] as const) {
      expect(redact(`{"t":"${forms[name]}"}`)).toEqual({ text: `{"t":"${MARK}"}`, count: 1 });
    }
  });

  it('redacts a secret with a quote or a backslash inside a JSON string, slashes escaped or not', () => {
    for (const body of [JSON.stringify({ echo: AWKWARD }), JSON.stringify({ echo: AWKWARD }).replaceAll('/', '\\/')]) {
      const r = redact(body, AWKWARD);
      expect(r).toEqual({ text: `{"echo":"${MARK}"}`, count: 1 });
      expect(findLeak(r.text, AWKWARD)).toBeUndefined();
    }
  });

  it('redacts these forms in a header value too', () => {
    const needles = secretNeedles({ kind: 'token', value: AWKWARD });
    const forms = canaryForms(AWKWARD);
    for (const name of [
      'json string',
      'json string, slashes',
      'percent, every byte',
      'percent, every byte, lower',
      'unicode escapes',
      'unicode escapes, upper',
    ]) {
      expect(redactText(`x ${forms[name]} y`, needles), name).toEqual({ text: `x ${MARK} y`, count: 1 });
    }
  });
});

describe('the leak guard on a Basic credential (a github_app token on a git host)', () => {
  const token = `ghs_${CANARY}Xy`;
  const needles = secretNeedles({ kind: 'basic', username: 'x-access-token', password: token });
  const header = Buffer.from(`x-access-token:${token}`).toString('base64');

  it('redacts the Authorization value in every form it redacts a bearer token in', () => {
    const bytes = Buffer.from(header);
    const escapedEveryByte = bytes.toString('hex').toUpperCase().replace(/../g, '%$&');
    const unicode = [...header].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    const forms: Record<string, string> = {
      'as sent': `Basic ${header}`,
      'every byte %XX': escapedEveryByte,
      'every byte %xx': escapedEveryByte.toLowerCase(),
      '\\u per character': unicode,
      '\\U per character': unicode.replace(/\\u([0-9a-f]{4})/g, (_, h: string) => `\\u${h.toUpperCase()}`),
      hex: bytes.toString('hex'),
      'base64 of the base64': bytes.toString('base64'),
      'base64url of the base64': bytes.toString('base64url'),
    };
    for (const [name, form] of Object.entries(forms)) {
      const { output, count } = redactAll(Buffer.from(`{"echo":"${form}"}`), needles);
      expect(count, name).toBeGreaterThanOrEqual(1);
      const text = output.toString();
      expect(text, name).not.toContain(form);
      // What is left around the marker: "Basic ", the padding in its form, and a few characters of
      // base64 at the ends (made of the padding or partly of neighbouring bytes): nothing of the pair.
      // base64's padding (=, %3D, \u003d) is left too: it tells nothing.
      const rest = text
        .replace('{"echo":"', '')
        .replace('"}', '')
        .replace(MARK, '')
        .replace('Basic ', '')
        .replace(/=|%3d|\\u003d|3d/gi, '');
      expect(rest.length, `${name}: ${text}`).toBeLessThanOrEqual(4);
      expect(findLeak(text, token), name).toBeUndefined();
    }
  });
});

describe('the leak guard on a needle cut at the edge of a body', () => {
  const forms = Object.entries(canaryForms(CANARY)).filter(([name]) => !name.includes('half'));

  it('redacts a body that ends with the first 6 or more characters of a form, or begins with its last 6 or more', () => {
    for (const [name, form] of forms) {
      for (let cut = 6; cut < form.length - 6; cut++) {
        const head = redact(`{"echo":"Bearer ${form.slice(0, cut)}`);
        expect(head, `${name} cut ${cut}`).toEqual({ text: `{"echo":"Bearer ${MARK}`, count: 1 });
        const tail = redact(`${form.slice(cut)}"}`);
        expect(tail, `${name} cut ${cut}`).toEqual({ text: `${MARK}"}`, count: 1 });
      }
    }
  });

  it('leaves 5 characters or fewer, and a slice that is not at an edge', () => {
    expect(redact(`x ${CANARY.slice(0, 5)}`).count).toBe(0);
    expect(redact(`${CANARY.slice(-5)} x`).count).toBe(0);
    expect(redact(`x ${CANARY.slice(0, 12)} y`).count).toBe(0);
  });

  it('masks an edge slice with as many bytes, so lengths hold', () => {
    const body = Buffer.from(`${CANARY.slice(4)} middle ${CANARY.slice(0, 9)}`);
    const { output, count } = redactAll(body, secretNeedles({ kind: 'token', value: CANARY }), 'mask');
    expect(output.toString()).toBe(`${'*'.repeat(CANARY.length - 4)} middle ${'*'.repeat(9)}`);
    expect(count).toBe(2);
  });
});

describe('the new forms through the streaming scanner, the body cut at every position', () => {
  const b64 = Buffer.from(CANARY).toString('base64');
  const forms = canaryForms(AWKWARD);
  const cases: Array<[string, string, string]> = [
    ...['percent, every byte', 'percent, every byte, lower', 'unicode escapes', 'unicode escapes, upper', 'json string', 'json string, slashes'].map(
      (name) => [name, AWKWARD, forms[name]!] as [string, string, string],
    ),
    ...[1, 10, 20, 29].map((at) => [`base64 broken after ${at}`, CANARY, `${b64.slice(0, at)}\r\n${b64.slice(at)}`] as [string, string, string]),
    ['a slice at each edge', CANARY, `${CANARY.slice(7)} and ${CANARY.slice(0, 8)}`],
  ];

  it.each(cases)('%s: what a whole-body scan gives, in two chunks or one byte at a time', (name, secret, form) => {
    const needles = secretNeedles({ kind: 'token', value: secret });
    // Slices count at the body's edges only: that body is the form itself.
    const body = Buffer.from(name.startsWith('a slice') ? form : `{"echo":"${form}"} ${form}`);
    const whole = redactAll(body, needles, 'mask');
    expect(findLeak(whole.output, secret)).toBeUndefined();
    const through = (chunks: Buffer[]) => {
      const scanner = new SecretScanner(needles, 'mask');
      const out = Buffer.concat([...chunks.flatMap((c) => scanner.scan(Buffer.from(c))), scanner.end()]);
      return { out, count: scanner.redactions };
    };
    for (let cut = 0; cut <= body.length; cut++) {
      const r = through([body.subarray(0, cut), body.subarray(cut)]);
      expect(r.out.equals(whole.output), `cut at ${cut}`).toBe(true);
      expect(r.count).toBe(whole.count);
    }
    const bytes = through([...body].map((b) => Buffer.from([b])));
    expect(bytes.out.equals(whole.output)).toBe(true);
  });
});
