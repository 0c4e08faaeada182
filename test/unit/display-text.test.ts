import { describe, expect, it } from 'vitest';
import { displaySafe, unsafeDisplayText } from '../../src/config/display-text.ts';
import { parseConfig } from '../../src/config/load.ts';
import { printTable } from '../../src/cli/io.ts';

// Bidirectional overrides (U+202E and friends) reverse the text after them where a person reads it:
// refused in what an operator sets, made visible in what keyway shows.

const RLO = '\u202E';

describe('display text', () => {
  it('names each control or bidi character; plain text, accents and emoji pass', () => {
    for (const c of [
      '\u202A',
      '\u202B',
      '\u202C',
      '\u202D',
      RLO,
      '\u2066',
      '\u2067',
      '\u2068',
      '\u2069',
      '\u200E',
      '\u200F',
      '\u061C',
      '\u0007',
      '\u009B',
      '\u2028',
    ]) {
      expect(unsafeDisplayText(`team${c}x`), c.codePointAt(0)!.toString(16)).toMatch(
        /^it holds U\+[0-9A-F]{4}, a control or bidirectional-formatting character$/,
      );
    }
    for (const ok of ['payments', 'équipe données', 'ops 🚀', 'a/b-c_d.e']) expect(unsafeDisplayText(ok)).toBeUndefined();
  });

  it('shows each one as a visible <U+XXXX>, leaving the rest alone', () => {
    expect(displaySafe(`gpj.${RLO}exe`)).toBe('gpj.<U+202E>exe');
    expect(displaySafe('\u2066a\u2069 b\u001b[2J')).toBe('<U+2066>a<U+2069> b<U+001B>[2J');
    expect(displaySafe('plain')).toBe('plain');
  });

  it('a listing made visible: a stored value with an override cannot reverse the row', () => {
    const out: string[] = [];
    printTable({ out: (l: string) => out.push(l), err: () => {} } as never, [{ id: 'g', account: `ada${RLO}moc.evil@` }], ['id', 'account']);
    expect(out.join('\n')).not.toContain(RLO);
    expect(out[1]).toContain('ada<U+202E>moc.evil@');
  });

  it('the config refuses an injection format holding one, naming the key', () => {
    expect(() =>
      parseConfig(
        { grants: { g: { type: 'api_key', domains: ['api.example.test'], secret: 'env:X', inject: { header: 'X-Key', format: `{secret}${RLO}` } } } },
        '/home/test',
      ),
    ).toThrow(/grants\.g\.inject\.format.*U\+202E/);
  });
});
