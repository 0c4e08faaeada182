import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadCedarEngine } from '../../../src/policy/cedar/engine.ts';
import { CEDAR_SCHEMA } from '../../../src/policy/cedar/schema.ts';

// The Cedar the docs show is Cedar that validates against the schema keyway ships.
const PAGES = ['docs/policy-as-code.md', 'docs/mcp.md'].map((p) => readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8'));

describe('the Cedar in the docs', () => {
  it('validates against the shipped schema', async () => {
    const engine = await loadCedarEngine();
    const blocks = PAGES.flatMap((page) => [...page.matchAll(/^```cedar\n([\s\S]*?)^```$/gm)].map((m) => m[1]!));
    // The one-line forbid in docs/mcp.md, as written in its sentence.
    const inline = PAGES[1]!.match(/`(forbid \(principal, action == Action::"mcp_call"[\s\S]*?;)`/)?.[1]?.replace(/\n/g, ' ');
    expect(blocks.length).toBeGreaterThan(0);
    expect(inline).toBeDefined();
    for (const text of [...blocks, inline!]) {
      const answer = engine.validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: text } });
      expect(answer.type === 'success' ? answer.validationErrors : answer.errors, text).toEqual([]);
    }
  });
});
