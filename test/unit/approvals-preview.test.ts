// What an approver sees of a body (approvals/preview.ts): enough to decide, never a secret, bounded.
import { describe, expect, it } from 'vitest';
import { bodyPreview, MAX_PREVIEW } from '../../src/approvals/preview.ts';

const json = (value: unknown) => bodyPreview(Buffer.from(JSON.stringify(value)), 'application/json; charset=utf-8');

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

  it('shows form fields one per line, redacted the same way', () => {
    expect(bodyPreview(Buffer.from('amount=12.50&to=acct-7&password=x&api_key=y'), 'application/x-www-form-urlencoded')).toBe(
      'amount=12.50\nto=acct-7\npassword=[redacted]\napi_key=[redacted]',
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
    expect(big.length).toBeLessThanOrEqual(MAX_PREVIEW + 1);
  });

  it('shows nothing for other types, unparsable JSON, or an empty body', () => {
    expect(bodyPreview(Buffer.from('<xml/>'), 'application/xml')).toBeNull();
    expect(bodyPreview(Buffer.from('{"a":'), 'application/json')).toBeNull();
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
});
