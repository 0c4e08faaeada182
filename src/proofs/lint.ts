// `keyway policy lint`: each Cedar file validated against keyway's schema by Cedar's own validator
// (a misspelled context attribute, a wrong type, an unknown entity type: FILE:LINE:COLUMN), then
// what validation cannot see because it needs the config: a policy whose principal or resource no
// agent or grant of the config is, and a permit that an unconditional forbid as wide or wider
// always overrides (Cedar: a forbid wins).

import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import type { LoadedPolicy } from '../policy/cedar/contract.ts';
import { readTrustedPolicyFile } from '../policy/cedar/file-trust.ts';
import { policyFiles } from '../policy/cedar/load.ts';
import { loadCurrentPolicy, policySchemaText } from './engine.ts';
import { loadCedarEngine } from '../policy/cedar/engine.ts';
import { headContains, type PolicyScope, scopesOf } from './scope.ts';

export interface LintFinding {
  readonly severity: 'error' | 'warning';
  /** `FILE:LINE:COLUMN`, or the policy's origin. */
  readonly at: string;
  /** The policy's id, where known. */
  readonly policy: string | undefined;
  readonly message: string;
}

/** A 1-based line and column for an offset into a text. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

/** Cedar's validator over one file's text. */
export async function validateFile(file: string, text: string, schema: string | object): Promise<LintFinding[]> {
  const cedar = await loadCedarEngine();
  const answer = cedar.validate({ schema: schema as never, policies: { staticPolicies: text } });
  const where = (start: number | undefined) => {
    if (start === undefined) return file;
    const at = lineColumn(text, start);
    return `${file}:${at.line}:${at.column}`;
  };
  const said = (message: string, help: string | null) => `${message.replace(/^for policy `[^`]*`, /, '')}${help ? ` (${help})` : ''}`;
  if (answer.type === 'failure')
    return answer.errors.map((e) => ({ severity: 'error', at: where(e.sourceLocations?.[0]?.start), policy: undefined, message: said(e.message, e.help) }));
  return once([
    ...answer.validationErrors.map((e) => ({
      severity: 'error' as const,
      at: where(e.error.sourceLocations?.[0]?.start),
      policy: undefined,
      message: said(e.error.message, e.error.help),
    })),
    ...answer.validationWarnings.map((e) => ({
      severity: 'warning' as const,
      at: where(e.error.sourceLocations?.[0]?.start),
      policy: undefined,
      message: said(e.error.message, e.error.help),
    })),
  ]);
}

/** The validator says a mistake once per action (request, mcp_call): said once here. */
function once(findings: LintFinding[]): LintFinding[] {
  const seen = new Set<string>();
  return findings
    .map((f) => ({ ...f, message: f.message.replace(/ for Action::"[^"]*"/, '') }))
    .filter((f) => {
      const key = `${f.severity} ${f.at} ${f.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** Whether a policy came from a Cedar file (not compiled from the YAML). */
const fromFile = (s: PolicyScope) => !s.origin.startsWith('yaml:');

/** Policies whose head names an agent or grant the config does not have: they can never apply. */
export function neverApplies(scopes: readonly PolicyScope[], config: Config): LintFinding[] {
  const findings: LintFinding[] = [];
  for (const s of scopes.filter(fromFile)) {
    if (s.agent !== undefined && !Object.hasOwn(config.agents, s.agent))
      findings.push({
        severity: 'warning',
        at: s.origin,
        policy: s.id,
        message: `can never apply: no agent of the config is Agent::${JSON.stringify(s.agent)} (an agent only the store knows is not checked)`,
      });
    if (s.grant !== undefined && !Object.hasOwn(config.grants, s.grant))
      findings.push({
        severity: 'warning',
        at: s.origin,
        policy: s.id,
        message: `can never apply: no grant of the config is Grant::${JSON.stringify(s.grant)}`,
      });
  }
  return findings;
}

/** Permits that an unconditional forbid whose head contains theirs always overrides. */
export function shadowed(scopes: readonly PolicyScope[]): LintFinding[] {
  const blanket = scopes.filter((s) => s.effect === 'forbid' && !s.conditional);
  const findings: LintFinding[] = [];
  for (const permit of scopes.filter((s) => s.effect === 'permit' && fromFile(s))) {
    const over = blanket.find((f) => headContains(f, permit));
    if (over !== undefined)
      findings.push({
        severity: 'warning',
        at: permit.origin,
        policy: permit.id,
        message: `shadowed: ${over.id} (${over.origin}) forbids everything it permits, with no condition`,
      });
  }
  return findings;
}

/** Every finding for a loaded policy: validation per file, then what needs the config. */
export async function lintPolicy(policy: LoadedPolicy, config: Config, schema: string | object): Promise<LintFinding[]> {
  // The compiled YAML is keyway's own text: with no Cedar file there is nothing to lint, and the engine stays unloaded.
  if (!policy.hasCedarFiles) return [];
  const findings: LintFinding[] = [];
  for (const file of policy.files) findings.push(...(await validateFile(file, await readFile(file, 'utf8'), schema)));
  const scopes = await scopesOf(policy.policies);
  findings.push(...neverApplies(scopes, config), ...shadowed(scopes));
  return findings;
}

/**
 * Lint of the home's policy as it is on disk now. A file that keeps it from loading (a parse error,
 * a file others may write) is a finding too, with every file still validated on its own, so one
 * broken file does not hide the others' mistakes.
 */
export async function lintHome(config: Config): Promise<{ loaded: LoadedPolicy | undefined; findings: LintFinding[] }> {
  const schema = policySchemaText();
  let loaded: LoadedPolicy;
  try {
    loaded = await loadCurrentPolicy(config);
  } catch (err) {
    if (!(err instanceof KeywayError) || err.code !== 'config_invalid') throw err;
    const findings: LintFinding[] = [];
    for (const file of policyFiles(config)) {
      const read = readTrustedPolicyFile(file, config.home);
      if ('refused' in read) findings.push({ severity: 'error', at: file, policy: undefined, message: `refused: ${read.refused}` });
      else findings.push(...(await validateFile(file, read.text, schema)));
    }
    if (!findings.some((f) => f.severity === 'error')) findings.push({ severity: 'error', at: 'policy', policy: undefined, message: err.message });
    return { loaded: undefined, findings };
  }
  return { loaded, findings: await lintPolicy(loaded, config, schema) };
}
