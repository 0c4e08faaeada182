import { describe, expect, it } from 'vitest';
import { cleanPurpose, MAX_PURPOSE_CHARS } from '../../src/proxy/stages/purpose.ts';

// X-Keyway-Purpose as the audit line records it (stages/purpose.ts).
describe('cleanPurpose', () => {
  it('keeps a plain line as it is, and reads UTF-8 bytes as UTF-8', () => {
    expect(cleanPurpose('sync the calendar')).toBe('sync the calendar');
    expect(cleanPurpose(Buffer.from('résumé ✓', 'utf8').toString('latin1'))).toBe('résumé ✓');
    // Not valid UTF-8: kept as the latin1 text it is.
    expect(cleanPurpose('caf\xe9')).toBe('café');
  });

  it('turns control, format and line-separator characters into spaces, collapses them, and treats blank as absent', () => {
    expect(cleanPurpose('a\r\nb\u0000c\u202Ed\u2028e')).toBe('a b c d e');
    expect(cleanPurpose('  \t ')).toBeUndefined();
    expect(cleanPurpose(undefined)).toBeUndefined();
    expect(cleanPurpose(['one', 'two'])).toBe('one, two');
  });

  it(`cuts at ${MAX_PURPOSE_CHARS} characters, never inside one`, () => {
    const cut = cleanPurpose('✓'.repeat(500))!;
    expect([...cut]).toHaveLength(MAX_PURPOSE_CHARS);
    expect(cut.endsWith('✓…')).toBe(true);
  });
});
