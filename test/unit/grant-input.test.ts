import { describe, expect, it } from 'vitest';
import { grantSchemas } from '../../src/admin/api/grant-schemas.ts';
import { grantFields } from '../../src/config/grant-fields.ts';
import { MalformedInput } from '../../src/operations/fields.ts';
import { grantChangeInput, grantCreateInput, parseInput } from '../../src/operations/grant-schema.ts';

// What `keyway grants add|set` and the admin API take is checked by the zod schemas the config's
// grant is built from: one description, each refusal in the caller's own words.
const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (err) {
    return { message: (err as Error).message, malformed: err instanceof MalformedInput };
  }
  throw new Error('not refused');
};

describe('grant input', () => {
  it('names a field as the caller wrote it', () => {
    expect(refusal(() => parseInput(grantChangeInput, { inject: { format: 'x' } }, 'api')).message).toBe('inject.format must contain {secret}');
    expect(refusal(() => parseInput(grantChangeInput, { inject: { format: 'x' } }, 'cli')).message).toBe('--format must contain {secret}');
    expect(refusal(() => parseInput(grantChangeInput, { labels: { team: 'a\u202Eb' } }, 'api')).message).toBe(
      'labels team: it holds U+202E, a control or bidirectional-formatting character',
    );
    expect(refusal(() => parseInput(grantChangeInput, { labels: { 'Bad Key': 'x' } }, 'cli')).message).toMatch(/^--label: a label name is/);
    expect(refusal(() => parseInput(grantCreateInput, { id: 'UPPER', type: 'bearer', domains: ['a.test'] }, 'cli')).message).toMatch(/^grant id "UPPER": /);
    expect(refusal(() => parseInput(grantCreateInput, { id: 'ok', type: 'bearer', domains: ['*.com'] }, 'cli')).message).toBe(
      '--domains: "*.com" is broader than one registrable domain',
    );
  });

  it('tells a body of the wrong shape (bad_request on the API) from a grant the rules refuse (usage)', () => {
    expect(refusal(() => parseInput(grantChangeInput, { secret: 'x' }, 'api'))).toEqual({
      message: 'unknown field "secret"; expected domains, inject, labels, allow_range, require_purpose, model_api, mcp',
      malformed: true,
    });
    expect(refusal(() => parseInput(grantCreateInput, { id: 'ok', domains: ['a.test'] }, 'api'))).toEqual({ message: 'type: required', malformed: true });
    expect(refusal(() => parseInput(grantCreateInput, { id: 'ok', type: 'bearer', domains: ['a.test'], secret: 1 }, 'api'))).toEqual({
      message: 'secret: expected a string or an object',
      malformed: true,
    });
    expect(refusal(() => parseInput(grantCreateInput, { id: 'ok', type: 'bearer', domains: [] }, 'api'))).toEqual({
      message: 'domains: expected at least one domain',
      malformed: false,
    });
  });

  it('a change has no defaults: what is not given stays as it is', () => {
    expect(parseInput(grantChangeInput, {}, 'api')).toEqual({});
  });

  it('the OpenAPI schemas are derived from the same fields', () => {
    const { GrantCreate, GrantChange } = grantSchemas() as Record<string, { properties: Record<string, unknown>; required?: string[] }>;
    expect(Object.keys(GrantCreate?.properties ?? {})).toEqual(['id', ...Object.keys(grantFields.shape), 'labels', 'secret']);
    expect(GrantCreate?.required).toEqual(['id', 'type', 'domains']);
    expect(GrantChange?.required).toBeUndefined();
  });
});
