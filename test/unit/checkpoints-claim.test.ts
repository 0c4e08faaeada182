import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { claimProblems, claimSignatureValid, signClaim } from '../../src/audit/checkpoints/claim.ts';
import { checkpointKeyFrom } from '../../src/audit/checkpoints/key.ts';
import type { AuditLine } from '../../src/audit/record.ts';

// A bundle's signed claim held to its lines' own times: a claim that verifies must still agree with
// the lines (an export bug, or a key in the wrong hands, cannot pass off one day's lines as another's).

const key = checkpointKeyFrom(randomBytes(32));
const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 9, minute)).toISOString();
const line = (seq: number, minute: number, replica?: string) => ({ seq, ts: at(minute), ...(replica === undefined ? {} : { replica }) }) as AuditLine;
// Seq 4 started before the window and ended inside it (a long request): in the range, not counted.
const LINES = [line(1, 1), line(2, 2), line(3, 3), line(4, 0), line(5, 5), line(6, 9)];
const fields = { since: at(3), until: at(6), first_seq: 3, last_seq: 5, lines: 2, from_seq: 1, to_seq: 6, exported_at: at(10) };

describe('bundle claim', () => {
  it('a claim keyway signed over its lines verifies and agrees with them, a long request inside the range included', () => {
    const claim = signClaim(fields, key);
    expect(claimSignatureValid(claim, key.publicKey)).toBe(true);
    expect(claimProblems(claim, LINES)).toEqual([]);
  });

  it('any field changed after signing fails the signature', () => {
    const claim = signClaim(fields, key);
    for (const change of [{ since: at(4) }, { until: at(59) }, { first_seq: 4 }, { to_seq: 5 }, { replica: 'eu-1' }, { lines: 3 }])
      expect(claimSignatureValid({ ...claim, ...change }, key.publicKey)).toBe(false);
    expect(claimSignatureValid(claim, checkpointKeyFrom(randomBytes(32)).publicKey)).toBe(false);
  });

  it("a signed claim for another day, another seq range or another replica disagrees with the lines' own times", () => {
    const nextDay = (t: string) => new Date(Date.parse(t) + 86_400_000).toISOString();
    expect(claimProblems(signClaim({ ...fields, since: nextDay(fields.since), until: nextDay(fields.until) }, key), LINES)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/seq 3, at .* lies outside the signed window/),
        expect.stringMatching(/0 line\(s\) lie in the signed window/),
      ]),
    );
    expect(claimProblems(signClaim({ ...fields, first_seq: 5 }, key), LINES)).toContainEqual(expect.stringMatching(/seq 3, at .* outside its seq 5-5/));
    expect(claimProblems(signClaim({ ...fields, to_seq: 9 }, key), LINES)).toContainEqual(
      expect.stringMatching(/holds seq 1-6, and keyway signed it as seq 1-9/),
    );
    expect(claimProblems(signClaim({ ...fields, replica: 'eu-1' }, key), LINES)).toContainEqual(
      expect.stringMatching(/replica \(none\)'s, and .* replica eu-1/),
    );
  });
});
