// A name a contained command chose, shown to the person reviewing what was kept aside
// (contain/shown-name.ts): printable text of any script passes as it is, everything else is
// escaped, so no name can erase, forge or reorder a line of the review.
import { describe, expect, it } from 'vitest';
import { shownJson, shownName } from '../../src/contain/shown-name.ts';

describe('shownName', () => {
  it('passes ordinary names unchanged, in any script, with spaces, punctuation and symbols', () => {
    for (const name of [
      'README.md',
      'src/app.ts',
      'café',
      '日本/語.txt',
      'Ünïcödé ñ',
      'a b',
      'x-y_z.(1)[2]{3}~!@#$%^&*+=|;:\'"<>,?`',
      '☃ €',
      'e\u0301',
      'مرحبا',
      'שלום',
    ]) {
      expect(shownName(name)).toBe(name);
      expect(shownName(Buffer.from(name))).toBe(name);
    }
  });

  it('writes a backslash as \\\\, so no name can pass for one of its escapes', () => {
    expect(shownName('a\\x1b')).toBe('a\\\\x1b');
    expect(shownName('a\\x1b')).not.toBe(shownName('a\x1b'));
  });

  it('escapes C0 controls and DEL: \\t \\n \\r by name, the rest as \\xNN', () => {
    expect(shownName('a\x1b[2K\rforged\n')).toBe('a\\x1b[2K\\rforged\\n');
    expect(shownName('\t\x00\x07\x08\x1f\x7f')).toBe('\\t\\x00\\x07\\x08\\x1f\\x7f');
    for (let code = 0; code < 0x20; code++) expect(shownName(String.fromCharCode(code))).toMatch(/^\\(x[0-9a-f]{2}|[tnr])$/);
  });

  it('escapes C1 controls, format and bidirectional characters, separators and other spaces as \\u{…}', () => {
    expect(shownName('\u0085\u009b')).toBe('\\u{85}\\u{9b}');
    expect(shownName('evil\u202etxt.exe')).toBe('evil\\u{202e}txt.exe');
    const escaped: Array<[string, string]> = [
      ['\u200b', '200b'],
      ['\u200e', '200e'],
      ['\u200f', '200f'],
      ['\u202a', '202a'],
      ['\u202e', '202e'],
      ['\u2066', '2066'],
      ['\u2069', '2069'],
      ['\ufeff', 'feff'],
      ['\u061c', '61c'],
      ['\u2028', '2028'],
      ['\u2029', '2029'],
      ['\u00a0', 'a0'],
      ['\u3000', '3000'],
      ['\ue000', 'e000'],
      ['\u{e0001}', 'e0001'],
      ['\ud800', 'd800'],
    ];
    for (const [c, hex] of escaped) expect(shownName(`a${c}b`), hex).toBe(`a\\u{${hex}}b`);
  });

  it('escapes each byte that is not valid UTF-8 as \\xNN, and shows the valid text around it', () => {
    expect(shownName(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]))).toBe('bad\\xff\\xfe');
    expect(shownName(Buffer.concat([Buffer.from('café/'), Buffer.from([0xc3]), Buffer.from('日本')]))).toBe('café/\\xc3日本');
    // Overlong forms and encoded surrogates are not UTF-8.
    expect(shownName(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(shownName(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    // Bytes that are valid UTF-8 for a control are escaped as the control.
    expect(shownName(Buffer.from([0x1b, 0xc2, 0x9b, 0xe2, 0x80, 0xae]))).toBe('\\x1b\\u{9b}\\u{202e}');
  });

  it('leaves nothing a terminal acts on', () => {
    const hostile = Buffer.from('\x1b]0;title\x07\x1b[2K\r\u202e\u2066\x9b\x7f\u0085 ok');
    expect(shownName(hostile)).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe('shownJson', () => {
  it('parses to the same value, with no raw control, C1 or bidirectional character in its text', () => {
    const value = { path: '/p/esc\x1b[2K\rforged\u202e\u0085\x7f', why: 'café 日本 \\ "q"' };
    const text = shownJson(value);
    expect(JSON.parse(text)).toEqual(value);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for raw control bytes in what is printed
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
    expect(text).toContain('café 日本');
  });
});

describe('shownName: what shows as nothing', () => {
  it('escapes the Hangul fillers, variation selectors and the braille blank, which would make two names look alike or one look empty', () => {
    expect(shownName('a\u3164b\u115f\u1160\uffa0c\u2800d\ufe0fe\u{e0100}')).toBe('a\\u{3164}b\\u{115f}\\u{1160}\\u{ffa0}c\\u{2800}d\\u{fe0f}e\\u{e0100}');
    expect(JSON.parse(shownJson('x\u3164'))).toBe('x\u3164');
    expect(shownJson('x\u3164')).toBe('"x\\u3164"');
    // Letters of any script still pass as they are.
    expect(shownName('한국어 café ☃')).toBe('한국어 café ☃');
  });
});
