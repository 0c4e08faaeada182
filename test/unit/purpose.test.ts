import { describe, expect, it } from 'vitest';
import { cleanPurpose, MAX_PURPOSE_CHARS, recordedPurpose } from '../../src/proxy/stages/purpose.ts';

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

  it(`records at most ${MAX_PURPOSE_CHARS} characters, never cutting inside one`, () => {
    const cut = recordedPurpose(cleanPurpose('✓'.repeat(500))!, undefined);
    expect([...cut]).toHaveLength(MAX_PURPOSE_CHARS);
    expect(cut.endsWith('✓…')).toBe(true);
    // Characters outside the BMP count once each: 150 of them are not cut.
    expect(recordedPurpose('😀'.repeat(150), undefined)).toBe('😀'.repeat(150));
  });

  it('redacts the secret before cutting, so a secret across the cut leaves no part of itself', () => {
    const secret = 'sk-live-0123456789abcdefghij0123456789';
    const text = `${'a'.repeat(180)} ${secret}`;
    const recorded = recordedPurpose(text, { kind: 'token', value: secret });
    expect(recorded).not.toContain('sk-live-0123');
    expect(recorded).toContain('[redacted');
  });
});
