// doctor runs `keyway policy lint`: a Cedar file that does not validate against keyway's schema
// fails (the proxy would refuse to load it at reload), a policy that can never apply or that a
// forbid always overrides warns. A home with no Cedar file has nothing to lint: Cedar's engine is
// not loaded for it.

import { lintHome } from '../../../proofs/lint.ts';
import type { CheckResult, Context } from './context.ts';

const CHECK = 'policy lint';
/** Findings named in the line; the rest are counted. */
const NAMED = 3;

export async function checkPolicyLint(ctx: Context): Promise<CheckResult> {
  const { loaded, findings } = await lintHome(ctx.config);
  if (loaded !== undefined && !loaded.hasCedarFiles) return { check: CHECK, status: 'ok', detail: 'no Cedar files: the YAML rules alone decide' };
  const errors = findings.filter((f) => f.severity === 'error');
  const shown = (errors.length > 0 ? errors : findings).slice(0, NAMED).map((f) => `${f.at}: ${f.message}`);
  const more = findings.length > NAMED ? ` (and ${findings.length - NAMED} more)` : '';
  if (errors.length > 0)
    return {
      check: CHECK,
      status: 'fail',
      detail: `${errors.length} error(s): ${shown.join('; ')}${more}`,
      fix: 'fix the Cedar files (keyway policy lint lists every finding), then keyway reload',
    };
  if (findings.length > 0)
    return { check: CHECK, status: 'warn', detail: `${findings.length} warning(s): ${shown.join('; ')}${more}`, fix: 'keyway policy lint lists every finding' };
  return { check: CHECK, status: 'ok', detail: `${loaded?.files.length ?? 0} Cedar file(s) validate against the schema (${loaded?.hash ?? ''})` };
}
