// The dashboard's help beside a secret field is read off the types (credentials/types/secret-forms.ts,
// served by GET /api/grant-types): every registered type has it, and it says what the type's kind
// reads, so a type added to KINDS cannot reach the page without its help.
import { describe, expect, it } from 'vitest';
import { secretHelp } from '../../src/admin/api/grant-types.ts';
import { GRANT_TYPES } from '../../src/config/ids.ts';
import { KINDS, parseMaterial } from '../../src/credentials/types/index.ts';
import { secretFormsOf } from '../../src/credentials/types/secret-forms.ts';

describe("a grant type's secret help", () => {
  it('every registered type has help that says what its kind reads', () => {
    expect(Object.keys(KINDS).sort()).toEqual([...GRANT_TYPES].sort());
    for (const type of GRANT_TYPES) {
      const kind = KINDS[type];
      const forms = secretFormsOf(type);
      const help = secretHelp(forms);
      expect(help.length, type).toBeGreaterThan(20);
      expect(forms.shape, type).toBe(kind.shape);
      expect(forms.line, type).toBe(kind.line !== undefined);
      // A JSON form is named with its fields: a kind that reads an object writes them in its shape.
      expect(forms.json.length > 0, type).toBe(kind.object !== undefined);
      for (const form of forms.json) expect(help, type).toContain(form);
      // Else the shape's own words: one line, or no secret at all (login_capture).
      if (forms.json.length === 0) expect(help.toLowerCase(), type).toContain(kind.shape.toLowerCase());
    }
  });

  it('helps with the four types the hand-kept list had none for', () => {
    expect(secretHelp(secretFormsOf('dpop'))).toBe('JSON: {"clientId","clientSecret"}.');
    expect(secretHelp(secretFormsOf('token_exchange'))).toBe('JSON: {"clientId","clientSecret"}.');
    expect(secretHelp(secretFormsOf('http_signature'))).toBe('An http_signature secret is a PEM private key (Ed25519, or ECDSA on P-256).');
    expect(secretHelp(secretFormsOf('login_capture'))).toBe('A login_capture grant has no secret: its tokens are captured from the agent’s own login.');
  });

  it('names the JSON fields parseMaterial reads', () => {
    for (const type of GRANT_TYPES) {
      for (const form of secretFormsOf(type).json) {
        const fields = [...form.matchAll(/"([^"]+)"(\?)?/g)].filter(([, , optional]) => optional === undefined).map(([, key]) => key!);
        // The fields a form requires, each given a stand-in: parseMaterial refuses no field as unknown or missing by name.
        const given = JSON.stringify(Object.fromEntries(fields.map((key) => [key, 'x'])));
        try {
          parseMaterial(type, given);
        } catch (err) {
          expect((err as Error).message, `${type} ${form}`).not.toMatch(/"[A-Za-z_]+" must be/);
        }
      }
    }
  });

  it('says to paste PEMs as they are where a JSON form holds one, and what a certificate secret shows', () => {
    const pem = GRANT_TYPES.filter((type) => secretFormsOf(type).pem);
    expect(pem.sort()).toEqual(['github_app', 'google_service_account', 'mtls']);
    for (const type of pem) expect(secretHelp(secretFormsOf(type)), type).toMatch(/^JSON: .*; paste the PEMs as they are\./);
    expect(secretHelp(secretFormsOf('bearer'))).not.toContain('PEM');
    expect(secretHelp(secretFormsOf('mtls'))).toMatch(/The grant shows its certificate’s subject and expiry, never its key\.$/);
    expect(GRANT_TYPES.filter((type) => secretFormsOf(type).certificate)).toEqual(['mtls']);
  });
});
