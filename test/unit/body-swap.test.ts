import { describe, expect, it } from 'vitest';
import { grantPlaceholder, swapBody, swapFormatOf, swapMessage } from '../../src/credentials/body-swap/index.ts';
import { acceptAgentDeflate } from '../../src/proxy/websocket/deflate-offer.ts';

// The pure swap: a grant's placeholder replaced by its secret in JSON string values, form values
// and text, matched decoded, written back encoded, and never anywhere else.

const P = grantPlaceholder('slack');
// Every character that needs escaping somewhere: JSON (" \ control), forms (+ & = % space), '$' for replace().
const SECRET = 'xoxb-1+2&3=4%5 6"7\\8$&9\n';
const json = (text: string) => swapBody('json', Buffer.from(text), P, SECRET);
const form = (text: string) => swapBody('form', Buffer.from(text), P, SECRET);

describe('JSON bodies', () => {
  it('swaps a whole string value and part of one, escaped as JSON needs', () => {
    const out = json(`{"token":"${P}","auth":"Bearer ${P}","n":12345678901234567890}`);
    expect(out.outcome).toBe('swapped');
    expect(out.count).toBe(2);
    const parsed = JSON.parse(out.bytes.toString()) as Record<string, string>;
    expect(parsed['token']).toBe(SECRET);
    expect(parsed['auth']).toBe(`Bearer ${SECRET}`);
    // Token scanning keeps every other byte: the big integer is not rounded by a parse and re-serialise.
    expect(out.bytes.toString()).toContain('"n":12345678901234567890}');
  });

  it('never swaps a key, and swaps both values of a duplicate key, keeping both', () => {
    const out = json(`{"${P}":"x","t":"${P}","t":"${P}"}`);
    expect(out.bytes.toString()).toBe(`{"${P}":"x","t":${JSON.stringify(SECRET)},"t":${JSON.stringify(SECRET)}}`);
    expect(out.count).toBe(2);
  });

  it('matches the placeholder decoded: an escaped form is swapped too', () => {
    const out = json(`{"params":["keyway\\u002dplaceholder-slack", "a\\"b"]}`);
    expect(out.outcome).toBe('swapped');
    expect((JSON.parse(out.bytes.toString()) as { params: string[] }).params).toEqual([SECRET, 'a"b']);
  });

  it('leaves another grant, even one whose id starts with this one, and a body that is not JSON', () => {
    const other = grantPlaceholder('slack-admin');
    expect(json(`{"t":"${other}"}`)).toMatchObject({ outcome: 'none', count: 0 });
    expect(json(`{"t":"${P}xyz"}`).outcome).toBe('none');
    const broken = json(`{"t":"${P}"`);
    expect(broken.outcome).toBe('not_parsed');
    expect(broken.bytes.toString()).toBe(`{"t":"${P}"`);
    expect(swapBody('json', Buffer.from([0x7b, 0xff, 0x7d]), P, SECRET).outcome).toBe('not_parsed');
  });
});

describe('form bodies', () => {
  it('matches after decoding and encodes the secret so it decodes to itself', () => {
    const out = form(`token=keyway%2Dplaceholder-slack&channel=C1`);
    expect(out.outcome).toBe('swapped');
    expect(new URLSearchParams(out.bytes.toString()).get('token')).toBe(SECRET);
    expect(out.bytes.toString()).toContain('&channel=C1');
    expect(out.bytes.toString()).not.toContain('1+2'); // '+' in the secret is %2B, never a space
  });

  it('keeps every other pair byte for byte, whatever mix of + and %2B they use, and never swaps a name', () => {
    const out = form(`a=1+2%2B3&${P}=v&text=hi+${P}+there`);
    expect(out.bytes.toString().startsWith(`a=1+2%2B3&${P}=v&text=`)).toBe(true);
    expect(new URLSearchParams(out.bytes.toString()).get('text')).toBe(`hi ${SECRET} there`);
    expect(out.count).toBe(1);
  });

  it('passes a value that is not valid percent-encoding as it came', () => {
    expect(form(`token=${P}&x=%E0%A4%A`)).toMatchObject({ outcome: 'not_parsed', count: 0 });
  });
});

describe('text bodies and WebSocket messages', () => {
  it('replaces in text, and in a JSON message as JSON', () => {
    expect(swapBody('text', Buffer.from(`key ${P}.`), P, 's3cret').bytes.toString()).toBe('key s3cret.');
    const message = swapMessage(Buffer.from(`{"type":"auth","access_token":"${P}"}`), P, SECRET);
    expect(JSON.parse(message.bytes.toString())).toEqual({ type: 'auth', access_token: SECRET });
    expect(swapMessage(Buffer.from(`auth ${P}`), P, 'x').bytes.toString()).toBe('auth x');
  });

  it('knows which content types it swaps in', () => {
    expect(swapFormatOf('application/json; charset=utf-8')).toBe('json');
    expect(swapFormatOf('application/vnd.api+json')).toBe('json');
    expect(swapFormatOf('application/x-www-form-urlencoded')).toBe('form');
    expect(swapFormatOf('text/plain')).toBe('text');
    expect(swapFormatOf('application/octet-stream')).toBeUndefined();
    expect(swapFormatOf(undefined)).toBeUndefined();
  });
});

describe("the agent's permessage-deflate offer", () => {
  it('is taken with its context takeover parameters, or declined when keyway does not know a parameter', () => {
    expect(acceptAgentDeflate('permessage-deflate; client_max_window_bits')).toEqual({ response: 'permessage-deflate', noContextTakeover: false });
    expect(acceptAgentDeflate('permessage-deflate; client_no_context_takeover; server_max_window_bits=10')).toEqual({
      response: 'permessage-deflate; client_no_context_takeover; server_max_window_bits=10',
      noContextTakeover: true,
    });
    expect(acceptAgentDeflate('permessage-deflate; x_unknown, permessage-deflate')).toEqual({ response: 'permessage-deflate', noContextTakeover: false });
    expect(acceptAgentDeflate('permessage-deflate; server_max_window_bits=99')).toBeUndefined();
    expect(acceptAgentDeflate(undefined)).toBeUndefined();
  });
});

describe('a grant that names its fields (inject: {body: {fields: [...]}})', () => {
  const fields = new Set(['token', 'access_token']);
  it('swaps in JSON members of those names only (the nearest name over a value, arrays included), never elsewhere', () => {
    const body = Buffer.from(JSON.stringify({ token: P, text: P, nested: { access_token: P, note: `see ${P}` }, access_token: [P, { token: P }], other: [P] }));
    const out = swapBody('json', body, P, SECRET, fields);
    expect(JSON.parse(out.bytes.toString())).toEqual({
      token: SECRET,
      text: P,
      nested: { access_token: SECRET, note: `see ${P}` },
      access_token: [SECRET, { token: SECRET }],
      other: [P],
    });
    expect(out.count).toBe(4);
  });

  it('swaps in form fields of those names only, matched decoded; text bodies and plain messages not at all', () => {
    const out = swapBody('form', Buffer.from(`text=${P}&token=${P}&access%5Ftoken=${P}`), P, SECRET, fields);
    expect(new URLSearchParams(out.bytes.toString()).getAll('text')).toEqual([P]);
    expect(new URLSearchParams(out.bytes.toString()).getAll('token')).toEqual([SECRET]);
    expect(new URLSearchParams(out.bytes.toString()).getAll('access_token')).toEqual([SECRET]);
    expect(swapBody('text', Buffer.from(P), P, SECRET, fields).outcome).toBe('none');
    expect(swapMessage(Buffer.from(`auth ${P}`), P, SECRET, fields).outcome).toBe('none');
    expect(JSON.parse(swapMessage(Buffer.from(JSON.stringify({ type: 'auth', access_token: P })), P, SECRET, fields).bytes.toString())).toEqual({
      type: 'auth',
      access_token: SECRET,
    });
  });
});
