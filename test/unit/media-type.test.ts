import { describe, expect, it } from 'vitest';
import { mcpBodyProblem } from '../../src/mcp/body-reading.ts';
import { byteOrderMark, parseMediaType, utf8Reading } from '../../src/net/media-type.ts';

describe('parseMediaType', () => {
  it('reads a type and its parameters by the grammar, names in lower case, quoted values unquoted', () => {
    expect(parseMediaType('Application/JSON ; Charset="UTF-8";q=1')).toEqual({
      type: 'application/json',
      params: [
        ['charset', 'UTF-8'],
        ['q', '1'],
      ],
    });
    expect(parseMediaType('text/plain; x="a\\"b;c"')?.params).toEqual([['x', 'a"b;c']]);
    expect(parseMediaType('text/plain;;')?.params).toEqual([]);
  });

  it('refuses what is not a media type', () => {
    for (const text of [
      '',
      'json',
      'application/',
      '/json',
      'application/json charset=utf-8',
      'a/b; charset',
      'a/b; charset=',
      'a/b; x="open',
      'a/b; x="\u0001"',
      'a/b; x=a b',
    ])
      expect(parseMediaType(text), text).toBeUndefined();
  });
});

describe('utf8Reading', () => {
  it('reads UTF-8 said once, or no charset at all', () => {
    for (const text of ['application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'text/plain; format=flowed'])
      expect(utf8Reading(text).ok, text).toBe(true);
  });

  it('refuses another charset, a charset twice, a name a loose reader takes for charset, a quoted value readers split', () => {
    const reason = (text: string) => {
      const r = utf8Reading(text);
      return r.ok ? undefined : r.reason;
    };
    expect(reason('application/json; charset=utf-7')).toContain('"utf-7"');
    expect(reason('application/json; charset=UTF-16LE')).toContain('UTF-8 only');
    expect(reason('application/json; charset=utf8')).toContain('"utf8"');
    expect(reason('application/json; charset=utf-8; charset=utf-8')).toContain('twice');
    expect(reason('application/json; xcharset=utf-7')).toContain('takes for the charset');
    expect(reason('application/json; x="y;charset=utf-7"')).toContain('split differently');
    expect(reason('application/json; x="a b"')).toContain('split differently');
    expect(reason('application/json charset=utf-7')).toContain('not a media type');
    expect(reason(undefined as unknown as string)).toContain('no Content-Type');
  });
});

describe('byteOrderMark', () => {
  it('names UTF-8, UTF-16 and UTF-32 marks, and nothing in a plain body', () => {
    expect(byteOrderMark(Buffer.from([0xef, 0xbb, 0xbf, 0x7b]))).toBe('UTF-8');
    expect(byteOrderMark(Buffer.from([0xff, 0xfe, 0x7b, 0x00]))).toBe('UTF-16');
    expect(byteOrderMark(Buffer.from([0xfe, 0xff, 0x00, 0x7b]))).toBe('UTF-16');
    expect(byteOrderMark(Buffer.from([0xff, 0xfe, 0x00, 0x00]))).toBe('UTF-32');
    expect(byteOrderMark(Buffer.from([0x00, 0x00, 0xfe, 0xff]))).toBe('UTF-32');
    expect(byteOrderMark(Buffer.from('{"a":1}'))).toBeUndefined();
    expect(byteOrderMark(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('mcpBodyProblem', () => {
  const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  it('reads plain UTF-8 JSON', () => {
    expect(mcpBodyProblem({ 'content-type': 'application/json' }, 1, body)).toBeUndefined();
    expect(mcpBodyProblem({ 'content-type': 'application/json; charset=utf-8' }, 1, body)).toBeUndefined();
  });
  it('refuses two Content-Types, any Content-Encoding, another type, another parameter, a byte-order mark', () => {
    expect(mcpBodyProblem({ 'content-type': 'application/json' }, 2, body)).toContain('more than one Content-Type');
    expect(mcpBodyProblem({ 'content-type': 'application/json', 'content-encoding': 'identity' }, 1, body)).toContain('Content-Encoding');
    expect(mcpBodyProblem({ 'content-type': 'application/json-rpc' }, 1, body)).toContain('not application/json');
    expect(mcpBodyProblem({ 'content-type': 'application/json; profile=x' }, 1, body)).toContain('"profile"');
    expect(mcpBodyProblem({ 'content-type': 'application/json' }, 1, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]))).toContain('byte-order mark');
    expect(mcpBodyProblem({}, 0, body)).toContain('no Content-Type');
  });
});
