import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import type { LoadedPolicy, PolicyAnswer, PolicySource } from './contract.ts';
import { loadCedarEngine } from './engine.ts';
import { readTrustedPolicyFile } from './file-trust.ts';
import { policyHash } from './hash.ts';
import { makeJudge } from './judge.ts';
import { type ParsedPolicy, PolicyParseError, parsePolicyFile } from './parse.ts';
import { compileYamlPolicies, type YamlAgent } from './yaml-compile.ts';

// Loading the policy: the YAML rules compiled, and every Cedar file (`<home>/policies/*.cedar` in
// name order, then `policy.files` in the config's order) read, checked for who may write it, parsed
// once and sliced (judge.ts). Any failure refuses the whole load with one line naming the file (and
// FILE:LINE:COLUMN for a parse error): at start keyway does not start, at reload the old policy stays.
// Without Cedar files the engine is never imported.

/** What loading reads from a config. */
export interface PolicyInputs {
  readonly home: string;
  readonly agents: Readonly<Record<string, YamlAgent>>;
  readonly policy?: { readonly files: readonly string[] } | undefined;
  /** A candidate named on the command line (`keyway policy test --policy`): read, never put in force, so it may live outside the home. */
  readonly candidate?: boolean | undefined;
}

/** A Cedar file as read (and trusted) once: what workers are handed, so that every process parses the same text. */
export interface PolicyFileText {
  readonly file: string;
  readonly text: string;
}

/** A loaded policy, the compiled YAML text it hashed (`keyway policy show --cedar`), and the files' texts. */
export interface LoadedPolicySet extends LoadedPolicy {
  readonly yamlText: string;
  readonly texts: readonly PolicyFileText[];
}

const NO_CEDAR: PolicyAnswer = Object.freeze({ allowed: false, deciding: Object.freeze([]), errors: Object.freeze([]) });

/** The Cedar files a config names, absolute, in the order they are read: `<home>/policies/*.cedar`, then `policy.files`. */
export function policyFiles(inputs: Pick<PolicyInputs, 'home' | 'policy'>): string[] {
  const dir = join(inputs.home, 'policies');
  let own: string[] = [];
  try {
    if (existsSync(dir)) {
      own = readdirSync(dir)
        .filter((name) => name.endsWith('.cedar'))
        .sort()
        .map((name) => join(dir, name));
    }
  } catch (err) {
    throw new KeywayError('config_invalid', `policy folder ${dir} cannot be listed (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const named = (inputs.policy?.files ?? []).map((file) => (file.startsWith('/') ? file : join(inputs.home, file)));
  return [...new Set([...own, ...named])];
}

/** Reads the config's Cedar files, each checked first (file-trust.ts); throws config_invalid naming the file refused. */
export function readPolicyFiles(inputs: Pick<PolicyInputs, 'home' | 'policy' | 'candidate'>): PolicyFileText[] {
  return policyFiles(inputs).map((file) => {
    const read = readTrustedPolicyFile(file, inputs.candidate === true ? undefined : inputs.home);
    if ('refused' in read) throw new KeywayError('config_invalid', `policy file ${file} is refused: ${read.refused}`);
    return { file, text: read.text };
  });
}

/**
 * Loads the policy: the config's YAML rules and its Cedar files (read now, or as given: a worker
 * takes the texts its primary read; a policy command may give a candidate's files, read and
 * checked by readPolicyFiles or its own way). Throws config_invalid with one line saying what is wrong.
 */
export async function loadPolicy(inputs: PolicyInputs, given?: readonly PolicyFileText[]): Promise<LoadedPolicySet> {
  const yaml = compileYamlPolicies(inputs.agents);
  const yamlText = yaml.map((p) => `${p.text}\n`).join('\n');
  const yamlSources: PolicySource[] = yaml.map((p) => ({ id: p.id, origin: p.id, text: p.text }));
  const read = given ?? readPolicyFiles(inputs);
  if (read.length === 0) {
    return Object.freeze({
      hash: policyHash(yamlText, []),
      files: [],
      policies: yamlSources,
      hasCedarFiles: false,
      yamlText,
      texts: [],
      judge: () => NO_CEDAR,
    });
  }
  const files = read.map((r) => r.file);
  const texts = read.map((r) => r.text);
  const engine = await loadCedarEngine();
  const parsed: ParsedPolicy[] = [];
  const seen = new Map<string, string>();
  files.forEach((file, i) => {
    let policies: ParsedPolicy[];
    try {
      policies = parsePolicyFile(engine, file, texts[i]!);
    } catch (err) {
      if (err instanceof PolicyParseError) throw new KeywayError('config_invalid', `policy file ${err.message}`);
      throw err;
    }
    for (const policy of policies) {
      const before = seen.get(policy.id) ?? (policy.id.startsWith('yaml:') ? 'the compiled YAML rules' : undefined);
      if (before !== undefined) throw new KeywayError('config_invalid', `policy file ${policy.origin}: the id "${policy.id}" is used already (${before})`);
      seen.set(policy.id, policy.origin);
      parsed.push(policy);
    }
  });
  const hash = policyHash(
    yamlText,
    parsed.map((p) => ({ id: p.named ? p.id : undefined, json: JSON.stringify(p.json) })),
  );
  return Object.freeze({
    hash,
    files,
    policies: [...yamlSources, ...parsed.map((p) => ({ id: p.id, origin: p.origin, text: p.text }))],
    hasCedarFiles: true,
    yamlText,
    texts: read,
    judge: makeJudge(engine, parsed),
  });
}
