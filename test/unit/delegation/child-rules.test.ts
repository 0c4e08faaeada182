import { describe, expect, it } from 'vitest';
import { checkChildRules } from '../../../src/delegation/child-rules.ts';

// A child's own rules: the config's rule form, each on a grant the child holds.

describe('checkChildRules', () => {
  it('takes a list or {rules: [...]}, and gives it back as the schema reads it, as JSON', () => {
    const rules = [{ grant: 'github', methods: ['GET'], paths: ['/repos/**'] }];
    const read = checkChildRules(rules, ['github']);
    expect(read[0]).toMatchObject({ ...rules[0], deny: false });
    expect(checkChildRules({ rules }, ['github'])).toEqual(read);
    // Stored in the store as JSON, and compiled from it: nothing the schema made is lost on the way.
    expect(JSON.parse(JSON.stringify(read))).toEqual(read);
  });

  it('refuses a rule on a grant the child does not hold, and one the schema refuses, naming where', () => {
    expect(() => checkChildRules([{ grant: 'openai', methods: ['GET'] }], ['github'])).toThrow(/rules\[0\]\.grant: "openai" is not one of the child's grants/);
    expect(() => checkChildRules([{ grant: 'github', methods: ['FETCH'] }], ['github'])).toThrow(/^rules\[0\]\.methods/);
    expect(() => checkChildRules('allow everything', ['github'])).toThrow(/^rules: /);
  });
});
