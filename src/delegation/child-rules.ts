import { z } from 'zod';
import type { RuleConfig } from '../config/index.ts';
import { ruleSchema } from '../config/schema/agents.ts';
import { KeywayError } from '../errors/index.ts';

// A child's own rules (`keyway agents delegate … --rules FILE`): the config's rule form, checked by
// the config's own schema. They can only narrow: every request of the child is asked of its
// ancestors as well (terms.ts), so a rule that allows more than the parent allows nothing more.

const rulesSchema = z.array(ruleSchema);

/**
 * The rules as written (a YAML or JSON list, or `{rules: [...]}`), checked: each on a grant the
 * child holds. Returns them as the schema reads them (defaults filled in), to be stored and compiled
 * at each table build without the schema (a start loads none); throws usage naming the first fault.
 */
export function checkChildRules(input: unknown, grants: readonly string[] | undefined): RuleConfig[] {
  const list = input !== null && typeof input === 'object' && !Array.isArray(input) && 'rules' in input ? (input as { rules: unknown }).rules : input;
  const parsed = rulesSchema.safeParse(list);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new KeywayError('usage', `rules${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`);
  }
  parsed.data.forEach((rule, i) => {
    if (grants !== undefined && !grants.includes(rule.grant)) {
      throw new KeywayError('usage', `rules[${i}].grant: "${rule.grant}" is not one of the child's grants (${grants.join(', ')})`);
    }
  });
  return parsed.data;
}
