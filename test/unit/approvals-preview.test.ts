// What an approver sees of a body (approvals/preview.ts): enough to decide, never a secret, bounded.
import { describe, expect, it } from 'vitest';
import { bodyPreview, MAX_PREVIEW, RAW_MARKER } from '../../src/approvals/preview.ts';

const json = (value: unknown) => bodyPreview(Buffer.from(JSON.stringify(value)), 'application/json; charset=utf-8');
const form = (text: string | Buffer) => bodyPreview(Buffer.from(text), 'application/x-www-form-urlencoded');
const jsonText = (text: string | Buffer) => bodyPreview(Buffer.from(text), 'application/json');
/** The lines of a preview that look like a field (name, colon): what an approver reads as fields. */
const fieldLines = (preview: string | null) => (preview ?? '').split(/\r\n|\r|\n|\u2028|\u2029|\u0085/).filter((l) => /^[^\s"]+:|^"[^"]*":/.test(l));

describe('body previews', () => {
  it('redacts values under secret-looking names, at any depth, and token-shaped values under any name', () => {
    const shown = json({
      repo: 'acme/api',
      password: 'hunter2',
      auth: { Authorization: 'Basic abc', client_secret: 's', apiKey: 'k', private_key: 'p', otp: 123456 },
      items: [{ access_token: 't' }, 'ghp_0123456789abcdefghijklmnopqrstuvwxyz', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', 'sk-live-123'],
      note: 'keep',
      author: 'alice',
    });
    expect(shown).toBe(
      '{"repo":"acme/api","password":"[redacted]","auth":"[redacted]","items":[{"access_token":"[redacted]"},"[redacted]","[redacted]","[redacted]"],"note":"keep","author":"alice"}',
    );
  });

  it('shows form fields one per line, each value decoded and quoted, redacted the same way', () => {
    expect(form('amount=12.50&to=acct-7&password=x&api_key=y&memo=two+words%21')).toBe(
      'amount: "12.50"\nto: "acct-7"\npassword: [redacted]\napi_key: [redacted]\nmemo: "two words!"',
    );
  });

  it('bounds long values, wide objects, deep nesting and the whole', () => {
    const long = json({ text: 'x'.repeat(1000) })!;
    expect(long).toContain('… (1000 characters)');
    const wide = json(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])))!;
    expect(wide).toContain('"…":"60 more"');
    let deep: unknown = 'bottom';
    for (let i = 0; i < 50; i++) deep = { d: deep };
    expect(json(deep)).toContain('"…"');
    const big = json(Array.from({ length: 40 }, () => 'y'.repeat(119)))!;
    expect(big.split('\n')[0]).toHaveLength(MAX_PREVIEW);
  });

  it('shows nothing for other types, no type, or an empty body', () => {
    expect(bodyPreview(Buffer.from('<xml/>'), 'application/xml')).toBeNull();
    expect(bodyPreview(Buffer.alloc(0), 'application/json')).toBeNull();
    expect(bodyPreview(Buffer.from('{"a":1}'), undefined)).toBeNull();
  });

  it('shows nothing the server would read otherwise: another charset, a charset twice, a Content-Encoding, a byte-order mark', () => {
    // UTF-7 reads +ADEAMAAw- as "100": the approver would see the escape while the server reads an amount.
    const body = Buffer.from('{"to":"acct-7","amount":"+ADEAMAAw-"}');
    expect(bodyPreview(body, 'application/json')).toContain('+ADEAMAAw-');
    expect(bodyPreview(body, 'application/json; charset=utf-7')).toBeNull();
    expect(bodyPreview(body, 'application/json; charset="UTF-7"')).toBeNull();
    expect(bodyPreview(body, 'application/json; charset=utf-8; charset=utf-7')).toBeNull();
    expect(bodyPreview(body, 'application/x-www-form-urlencoded; charset=utf-16')).toBeNull();
    expect(bodyPreview(body, 'application/json', 'gzip')).toBeNull();
    expect(bodyPreview(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]), 'application/json')).toBeNull();
    expect(bodyPreview(body, 'application/json; charset=UTF-8')).toContain('acct-7');
  });

  // Issue 60: a person approves what they see, so a body is shown as what it says or marked raw.
  describe('never shows what the body does not say', () => {
    it('a form field holding %0A stays one field, its line break escaped (was shown as two lines note=hello / admin=true)', () => {
      const shown = form('note=hello%0Aadmin%3Dtrue');
      expect(shown).toBe('note: "hello\\nadmin=true"');
      expect(fieldLines(shown)).toEqual(['note: "hello\\nadmin=true"']);
    });

    it('a JSON body sent as a form is shown raw and marked, never as a field with an "=" it does not hold', () => {
      const shown = form('{"amount":12,"to":"acct-7"}')!;
      expect(shown.startsWith(RAW_MARKER)).toBe(true);
      expect(shown).toContain('{"amount":12,"to":"acct-7"}');
      expect(shown).not.toContain('=');
      expect(fieldLines(shown)).toEqual([]);
    });

    it('escapes CR, CRLF, NEL, U+2028/U+2029, bidi overrides and isolates, zero-width and other unseen characters', () => {
      const shown = form(
        'a=x%0Dto%3Devil&b=x%0D%0Ay&c=x%C2%85y&d=x%E2%80%A8y%E2%80%A9z&e=safe%E2%80%AEevil&f=%E2%81%A6in%E2%81%A9&g=a%E2%80%8Bb&h=x%1B%5B2Jy&i=%C2%A0&j=%7F',
      )!;
      expect(shown.split('\n')).toEqual([
        'a: "x\\rto=evil"',
        'b: "x\\r\\ny"',
        'c: "x\\u0085y"',
        'd: "x\\u2028y\\u2029z"',
        'e: "safe\\u202eevil"',
        'f: "\\u2066in\\u2069"',
        'g: "a\\u200bb"',
        'h: "x\\u001b[2Jy"',
        'i: "\\u00a0"',
        'j: "\\u007f"',
      ]);
      expect(fieldLines(shown)).toHaveLength(10);
    });

    it('quotes a name that is not plain, so a name cannot pose as another field or hold a colon', () => {
      expect(form('a%3A+%22b=c&%E2%80%AEx=y&amount=1')).toBe('"a: \\"b": "c"\n"\\u202ex": "y"\namount: "1"');
      // An escape cannot be forged: a backslash in a value is doubled.
      expect(form('a=%5Cn')).toBe('a: "\\\\n"');
    });

    it('cuts a very long value visibly, outside its quotes, with its length', () => {
      const shown = form(`note=${'x'.repeat(500)}EVIL&to=acct-7`)!;
      expect(shown).toBe(`note: "${'x'.repeat(120)}" … (cut: 504 characters)\nto: "acct-7"`);
      expect(form(`${'n'.repeat(300)}%21=1`)).toBe(`"${'n'.repeat(120)}" … (name cut: 301 characters): "1"`);
    });

    it('shows raw, marked, a form it cannot read one way: ";", a bare "=" in a value, empty or "="-less fields, raw spaces and line breaks, bad escapes, non-UTF-8', () => {
      for (const body of ['a=1;b=2', 'a=b=c', 'a=1&&b=2', 'a=1&', 'flag&a=1', 'a=hello world', 'a=1\nadmin=true', 'a=%zz', 'a=%C3%28', 'a=%E2%80']) {
        const shown = form(body)!;
        expect(shown.startsWith(RAW_MARKER), body).toBe(true);
        expect(shown.split('\n'), body).toHaveLength(2);
      }
      expect(form('a=1\nadmin=true')).toContain('a=1\\nadmin=true');
      expect(form(Buffer.from([0x61, 0x3d, 0xff, 0xfe]))).toContain('a=\\xff\\xfe');
    });

    it('redacts what looks like a secret in a body shown raw', () => {
      const shown = form('password=hunter2;user=bob&token=ghp_abcdefghijklmnopqrstuvwxyz0123456789')!;
      expect(shown.startsWith(RAW_MARKER)).toBe(true);
      expect(shown).not.toContain('hunter2');
      expect(shown).not.toContain('ghp_abc');
      expect(shown).toContain('user=bob');
      expect(jsonText('{"password": "hunter2", "a": 1,}')).not.toContain('hunter2');
      // A quoted value is redacted whole: spaces, escaped quotes and all.
      const quoted = jsonText('{"api_key": "hun ter\\" 2", "a": 1,}')!;
      expect(quoted).toContain('"api_key": [redacted], "a": 1,}');
      expect(quoted).not.toMatch(/hun|ter|2"/);
    });

    it('escapes unseen characters in JSON too (JSON.stringify leaves U+2028 and bidi overrides as they are), and stays JSON', () => {
      const shown = jsonText('{"to":"acct-7\\u2028amount: 1","memo":"\u202eevil\u2066","del":"\u007f","nbsp":"\u00a0"}')!;
      expect(shown).toBe('{"to":"acct-7\\u2028amount: 1","memo":"\\u202eevil\\u2066","del":"\\u007f","nbsp":"\\u00a0"}');
      expect(JSON.parse(shown)).toEqual({ to: 'acct-7\u2028amount: 1', memo: '\u202eevil\u2066', del: '\u007f', nbsp: '\u00a0' });
    });

    it('shows JSON numbers as written, not as a double reads them', () => {
      expect(jsonText('{"amount":1e400,"id":12345678901234567890,"x":1.50}')).toBe('{"amount":1e400,"id":12345678901234567890,"x":1.50}');
    });

    it('shows raw, marked, JSON that gives a member name twice (servers keep the first or the last)', () => {
      const shown = jsonText('{"amount":1,"to":"a","amount":1000}')!;
      expect(shown.startsWith(RAW_MARKER)).toBe(true);
      expect(shown).toContain('"amount":1,"to":"a","amount":1000');
      expect(jsonText('{"a":{"x":1},"b":{"x":2}}')).toBe('{"a":{"x":1},"b":{"x":2}}');
      expect(jsonText('{"a\\"":1,"a":2}')).toBe('{"a\\"":1,"a":2}');
      expect(jsonText('{"__proto__":{"admin":true},"to":"a"}')).toBe('{"__proto__":{"admin":true},"to":"a"}');
    });

    it('shows raw, marked, JSON that does not parse or is not UTF-8', () => {
      for (const body of [Buffer.from('{"a":'), Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])]) {
        const shown = jsonText(body)!;
        expect(shown.startsWith(RAW_MARKER)).toBe(true);
      }
      expect(jsonText(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))).toContain('{"a":"\\xff"}');
    });

    it('marks a preview cut as a whole on a line of its own', () => {
      const shown = form(Array.from({ length: 40 }, (_, i) => `f${i}=${'y'.repeat(100)}`).join('&'))!;
      expect(shown).toMatch(/\n… \(cut: 2000 of \d+ characters shown\)$/);
    });
  });
});
