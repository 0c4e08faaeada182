import { describe, expect, it } from 'vitest';
import { checkChildRules, storedChildRules } from '../../../src/delegation/child-rules.ts';

// A child's own rules: the config's rule form, each on a grant the child holds.

describe('checkChildRules', () => {
  it('takes a list or {rules: [...]}, and keeps it as written', () => {
    const rules = [{ grant: 'github', methods: ['GET'], paths: ['/repos/**'] }];
    expect(checkChildRules(rules, ['github'])).toEqual(rules);
    expect(checkChildRules({ rules }, ['github'])).toEqual(rules);
    expect(storedChildRules(rules)?.[0]).toMatchObject({ grant: 'github' });
  });

  it('refuses a rule on a grant the child does not hold, and one the schema refuses, naming where', () => {
    expect(() => checkChildRules([{ grant: 'openai', methods: ['GET'] }], ['github'])).toThrow(/rules\[0\]\.grant: "openai" is not one of the child's grants/);
    expect(() => checkChildRules([{ grant: 'github', methods: ['FETCH'] }], ['github'])).toThrow(/^rules\[0\]\.methods/);
    expect(() => checkChildRules('allow everything', ['github'])).toThrow(/^rules: /);
  });

  it('reads a stored list that no longer parses as none (the table leaves that agent out)', () => {
    expect(storedChildRules([{ grant: 'github', surprise: true }])).toBeUndefined();
  });
});
