import { describe, expect, it } from 'vitest';
import { readAnswer } from '../../src/capture/core/answer-body.ts';
import { capturedRecordId, findPlaceholders, jwtExpiry, makePlaceholder, wholePlaceholder } from '../../src/capture/core/placeholder.ts';
import { capturedLogins, type CapturedToken } from '../../src/capture/core/captured.ts';
import { swapAnswer, tokenFieldsIn } from '../../src/capture/core/swap.ts';

// Placeholders for captured tokens (capture/): shaped like what they stand for, found
// wherever they are written, and the token answer read as a client reads it (or said unreadable).

function jwt(header: object, claims: object, signatureBytes = 256): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part(header)}.${part(claims)}.${Buffer.alloc(signatureBytes, 7).toString('base64url')}`;
}

describe('placeholders', () => {
  it('an opaque token becomes kwcap_ and random characters as long as it, keeping only a known vendor prefix', () => {
    const real = 'gho_16C7e42F292c6912E7710c838347Ae178B4a';
    const p = makePlaceholder(real);
    expect(p.prefix).toBe('gho_');
    expect(p.text).toMatch(/^gho_kwcap_[A-Za-z0-9]+$/);
    expect(p.text.length).toBe(real.length);
    expect(p.text).not.toContain(real.slice(4, 12));
    // The start of a random token is part of its secret: not kept.
    const random = makePlaceholder('Xy3_q9ZrT0kLmN8pQ2wEr5tY7uI1oP4aS6dF');
    expect(random.prefix).toBe('');
    expect(random.text.startsWith('kwcap_')).toBe(true);
    // Short tokens still get an unguessable placeholder.
    expect(makePlaceholder('abc').text.length).toBeGreaterThanOrEqual(32);
    // Two captures of one value: two placeholders.
    expect(makePlaceholder(real).text).not.toBe(p.text);
  });

  it('a JWT keeps its header and claims, gains a kwc nonce, and gets a random signature', () => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const real = jwt({ alg: 'RS256', typ: 'JWT', kid: 'k1' }, { sub: 'user-1', aud: 'app', nonce: 'n-1', exp });
    const p = makePlaceholder(real);
    const [header, claims, signature] = p.text.split('.');
    expect(p.text.startsWith('eyJrd2Mi')).toBe(true);
    const h = JSON.parse(Buffer.from(header!, 'base64url').toString()) as Record<string, unknown>;
    expect(h).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: 'k1' });
    expect(typeof h['kwc']).toBe('string');
    expect(claims).toBe(real.split('.')[1]);
    expect(signature).not.toBe(real.split('.')[2]);
    expect(jwtExpiry(p.text)).toBe(exp * 1000);
    expect(p.key).toBe(p.text);
  });

  it('finds keys in one pass: a megabyte of marks is no work (a backtracking expression took a minute on it)', () => {
    const marks = 'eyJrd2Mi'.repeat(128 * 1024);
    expect(findPlaceholders(marks)).toEqual([]);
    expect(findPlaceholders(`${'kwcap_'.repeat(100_000)}x`)).toEqual([]);
    const jwtRun = `${'eyJrd2Mi'.repeat(1000)}.a.b`;
    expect(findPlaceholders(jwtRun)).toEqual([jwtRun]);
  });

  it('finds keys in any text, and tells one placeholder written whole from text around one', () => {
    const a = makePlaceholder('gho_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const b = makePlaceholder(jwt({ alg: 'ES256' }, { exp: 1 }));
    expect(findPlaceholders(`Bearer ${a.text}`)).toEqual([a.key]);
    expect(findPlaceholders(`x=${b.text}&y=${a.text}`)).toEqual([b.key, a.key]);
    expect(findPlaceholders('nothing here, not even eyJhbGciOi')).toEqual([]);
    expect(wholePlaceholder(a.text)).toBe(a.key);
    expect(wholePlaceholder(b.text)).toBe(b.key);
    expect(wholePlaceholder(`x${a.key}`)).toBeUndefined();
    // Store ids are hashes: they say nothing of the placeholder.
    expect(capturedRecordId(a.key)).not.toContain(a.key.slice(6, 20));
  });
});

describe('token answers', () => {
  it('reads JSON and forms in UTF-8, and says why it cannot read the rest', () => {
    expect(readAnswer(Buffer.from('{"access_token":"t"}'), 'application/json').format).toBe('json');
    expect(readAnswer(Buffer.from('access_token=t&scope=repo'), 'application/x-www-form-urlencoded; charset=utf-8').format).toBe('form');
    expect(readAnswer(Buffer.from('{"access_token":"t"}'), undefined).format).toBe('json');
    expect(readAnswer(Buffer.from('access_token=t'), 'text/plain').format).toBe('form');
    const cases: Array<[Buffer, string | undefined, RegExp]> = [
      [Buffer.from('{"access_token":"a","access_token":"b"}'), 'application/json', /twice/],
      [Buffer.from('access_token=a&access_token=b'), 'application/x-www-form-urlencoded', /twice/],
      [Buffer.from('{"access_token":"t"}'), 'application/json; charset=utf-16', /charset/],
      [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]), 'application/json', /byte-order mark/],
      [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), 'application/json', /UTF-8/],
      [Buffer.from('[1,2]'), 'application/json', /not an object/],
      [Buffer.from('{"a": '), 'application/json', /not valid JSON/],
    ];
    for (const [body, type, why] of cases) {
      const read = readAnswer(body, type);
      expect(read.format, body.toString('latin1')).toBe('unreadable');
      if (read.format === 'unreadable') expect(read.reason).toMatch(why);
    }
    // A name inside a string value is no member: not a duplicate.
    expect(readAnswer(Buffer.from('{"a":"{\\"a\\":1}","b":{"a":2}}'), 'application/json').format).toBe('json');
  });

  it('finds token fields at any depth, by name or by path', () => {
    const read = readAnswer(
      Buffer.from(
        JSON.stringify({ ok: true, access_token: 'a', team: { bot: { refresh_token: 'r' } }, list: [{ id_token: 'i' }], empty: { access_token: '' } }),
      ),
      'application/json',
    );
    expect(tokenFieldsIn(read, ['access_token', 'refresh_token', 'id_token'])).toEqual(['access_token', 'team.bot.refresh_token', 'list.0.id_token']);
    expect(tokenFieldsIn(read, ['team.bot.session'])).toEqual([]);
  });

  it('swaps the captured fields, keeps a refresh token the server did not rotate, and dates the records', () => {
    const now = Date.parse('2026-11-25T00:00:00Z');
    // A number past 2^53 elsewhere in the answer: the swap leaves every byte but the tokens' as it came.
    const raw =
      '{"access_token":"real-access-0123456789","refresh_token":"real-refresh-0123456789","expires_in":600,"token_type":"Bearer","id":12345678901234567890}';
    const read = readAnswer(Buffer.from(raw), 'application/json');
    if (read.format === 'unreadable') throw new Error(read.reason);
    expect(tokenFieldsIn(read, ['access_token', 'refresh_token', 'id_token'])).toEqual(['access_token', 'refresh_token']);
    const sent: CapturedToken = {
      grant: 'g',
      agent: 'a',
      field: 'refresh_token',
      value: 'real-refresh-0123456789',
      prefix: '',
      login: 'l1',
      endpoint: 'login/token',
      captured_at: '2026-11-24T00:00:00.000Z',
    };
    const swapped = swapAnswer(
      read,
      raw,
      { grant: 'g', agent: 'a', endpoint: 'login/token', fields: ['access_token', 'refresh_token'], refreshing: { key: 'kwcap_OLD', record: sent } },
      now,
    );
    const out = JSON.parse(swapped.body.toString()) as Record<string, unknown>;
    expect(out['refresh_token']).toBe('kwcap_OLD');
    expect(String(out['access_token'])).toMatch(/^kwcap_/);
    expect(out['expires_in']).toBe(600);
    expect(swapped.body.toString()).toContain('"id":12345678901234567890}');
    expect(swapped.body.toString()).not.toContain('real-');
    expect(swapped.sameRefreshToken).toBe(true);
    expect(swapped.captured).toEqual(['access_token', 'refresh_token']);
    expect(swapped.records).toHaveLength(1);
    expect(swapped.records[0]![1]).toMatchObject({
      field: 'access_token',
      value: 'real-access-0123456789',
      login: 'l1',
      expires_at: '2026-11-25T00:10:00.000Z',
    });
  });

  it('lists a grant’s logins by agent, without values, leaving out rotated-away refresh tokens', () => {
    const base = { grant: 'g', prefix: '', endpoint: 'login/token', value: 'SECRET-VALUE' };
    const records: Array<[string, CapturedToken]> = [
      ['captured:1', { ...base, agent: 'a', field: 'access_token', login: 'l1', captured_at: '2026-11-25T00:00:00Z', expires_at: '2026-11-25T01:00:00Z' }],
      ['captured:2', { ...base, agent: 'a', field: 'refresh_token', login: 'l1', captured_at: '2026-11-25T00:00:00Z' }],
      [
        'captured:3',
        {
          ...base,
          agent: 'a',
          field: 'refresh_token',
          login: 'l1',
          captured_at: '2026-11-24T00:00:00Z',
          exchanged_at: '2026-11-25T00:00:00Z',
          answer: { status: 200, content_type: undefined, body: '{}', rotated: true },
        },
      ],
      ['captured:4', { ...base, agent: 'b', field: 'access_token', login: 'l2', captured_at: '2026-11-25T02:00:00Z' }],
      ['captured:5', { ...base, grant: 'other', agent: 'b', field: 'access_token', login: 'l3', captured_at: '2026-11-25T02:00:00Z' }],
    ];
    const logins = capturedLogins(records, 'g');
    expect(logins.map((l) => [l.agent, l.fields])).toEqual([
      ['b', ['access_token']],
      ['a', ['access_token', 'refresh_token']],
    ]);
    expect(logins[1]!.expires_at).toBe('2026-11-25T01:00:00Z');
    expect(JSON.stringify(logins)).not.toContain('SECRET-VALUE');
  });
});
