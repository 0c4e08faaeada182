// `policy diff`'s "authority added": read from the two policies themselves, not from traffic, so it
// covers requests the log has never seen. Each item says what an agent may now do that it could not:
// a grant it may now use, a host a grant now covers, a permit with no equal before, a forbid or a
// YAML deny rule gone, a rule that no longer waits for a person's yes. What this reading cannot
// settle (a permit whose conditions changed) is listed as "cannot tell", never dropped: "no
// authority added" is said only when there is neither.

import type { Config } from '../config/index.ts';
import type { RuleConfig } from '../config/schema/config.ts';
import { headContains, type PolicyScope } from './scope.ts';

export interface AuthorityItem {
  /** `added`: this widens; `unknown`: this may widen, the reading cannot tell. */
  readonly kind: 'added' | 'unknown';
  readonly what: string;
}

export interface PolicySide {
  readonly config: Config;
  readonly scopes: readonly PolicyScope[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const head = (s: PolicyScope) =>
  `${s.agent === undefined ? 'any agent' : `Agent::${JSON.stringify(s.agent)}`} × ${s.grant === undefined ? 'any grant' : `Grant::${JSON.stringify(s.grant)}`} × ${s.actions === undefined ? 'any action' : s.actions.join('|')}`;
/** A policy's meaning without its id and whitespace: the same text under another @id is the same policy. */
const meaning = (s: PolicyScope) =>
  s.text
    .replace(/@id\("(?:[^"\\]|\\.)*"\)/g, '')
    .replace(/\s+/g, ' ')
    .trim();

export function authorityAdded(before: PolicySide, after: PolicySide): AuthorityItem[] {
  return [...grantsAdded(before.config, after.config), ...rulesLoosened(before.config, after.config), ...cedarAdded(before.scopes, after.scopes)];
}

/** Agents that may use more grants, grants that cover more hosts. */
function grantsAdded(before: Config, after: Config): AuthorityItem[] {
  const items: AuthorityItem[] = [];
  for (const [id, agent] of Object.entries(after.agents)) {
    const old = before.agents[id];
    if (old === undefined) {
      items.push({ kind: 'added', what: `new agent ${id} (grants: ${agent.grants?.join(', ') ?? 'every grant'})` });
      continue;
    }
    if (agent.grants === undefined && old.grants !== undefined)
      items.push({ kind: 'added', what: `agent ${id} may now use every grant (was: ${old.grants.join(', ')})` });
    else if (agent.grants !== undefined && old.grants !== undefined)
      for (const g of agent.grants.filter((g) => !old.grants!.includes(g))) items.push({ kind: 'added', what: `agent ${id} may now use grant ${g}` });
    if (agent.mode === 'warn' && old.mode !== 'warn') items.push({ kind: 'added', what: `agent ${id} is now in warn mode: its rules refuse nothing` });
  }
  for (const [id, grant] of Object.entries(after.grants)) {
    const old = before.grants[id];
    const hosts = (g: typeof grant) => g.domains.map((d) => `${d.wildcard ? '*.' : ''}${d.host}${d.port === undefined ? '' : `:${d.port}`}`);
    if (old === undefined) items.push({ kind: 'added', what: `new grant ${id} covering ${hosts(grant).join(', ') || 'no host'}` });
    else for (const h of hosts(grant).filter((h) => !hosts(old).includes(h))) items.push({ kind: 'added', what: `grant ${id} now covers ${h}` });
  }
  return items;
}

/** YAML rules: a deny rule gone, approve: human gone, an allow rule added where the grant already had allow rules. */
function rulesLoosened(before: Config, after: Config): AuthorityItem[] {
  const items: AuthorityItem[] = [];
  for (const [id, agent] of Object.entries(after.agents)) {
    const oldRules = before.agents[id]?.rules ?? [];
    const newRules = agent.rules;
    const has = (list: readonly RuleConfig[], r: RuleConfig) => list.some((x) => same(x, r));
    for (const [i, r] of oldRules.entries()) {
      if (has(newRules, r)) continue;
      const at = `yaml:agents.${id}.rules[${i}]`;
      if (r.deny) items.push({ kind: 'added', what: `deny rule ${at} (grant ${r.grant}) removed or changed` });
      else if (r.approve === 'human')
        items.push({ kind: 'added', what: `${at} (grant ${r.grant}) no longer as it was: requests it held for a person's yes may go without one` });
      else if (!newRules.some((x) => x.grant === r.grant))
        items.push({ kind: 'added', what: `grant ${r.grant} has no rule for agent ${id} any more: open to it` });
    }
    for (const [i, r] of newRules.entries()) {
      if (has(oldRules, r) || r.deny) continue;
      // An allow rule narrows a grant that had none (it was open) and widens one that had some.
      if (!oldRules.some((x) => x.grant === r.grant && !x.deny)) continue;
      const was = oldRules[i];
      items.push(
        was !== undefined && was.grant === r.grant && !was.deny && !has(newRules, was)
          ? { kind: 'unknown', what: `allow rule yaml:agents.${id}.rules[${i}] (grant ${r.grant}) changed: cannot tell whether it admits more` }
          : { kind: 'added', what: `allow rule yaml:agents.${id}.rules[${i}] added for grant ${r.grant}` },
      );
    }
  }
  return items;
}

/** Cedar: permits with no equal before, forbids gone. */
function cedarAdded(before: readonly PolicyScope[], after: readonly PolicyScope[]): AuthorityItem[] {
  const items: AuthorityItem[] = [];
  const cedar = (list: readonly PolicyScope[]) => list.filter((s) => !s.origin.startsWith('yaml:'));
  const oldMeanings = new Set(cedar(before).map(meaning));
  const newMeanings = new Set(cedar(after).map(meaning));
  for (const p of cedar(after).filter((s) => s.effect === 'permit' && !oldMeanings.has(meaning(s)))) {
    // An unconditional permit as wide before: this one adds nothing.
    if (before.some((q) => q.effect === 'permit' && !q.conditional && headContains(q, p))) continue;
    // A permit gone from before with a head as wide: this may be it, rewritten.
    const changed = cedar(before).some((q) => q.effect === 'permit' && headContains(q, p) && !newMeanings.has(meaning(q)));
    items.push(
      changed
        ? {
            kind: 'unknown',
            what: `permit ${p.id} (${head(p)}) differs from a permit before with a head as wide: cannot tell whether its conditions admit more`,
          }
        : { kind: 'added', what: `new permit ${p.id}: ${head(p)}${p.conditional ? ', with conditions' : ''}` },
    );
  }
  for (const f of cedar(before).filter((s) => s.effect === 'forbid' && !newMeanings.has(meaning(s)))) {
    // An unconditional forbid as wide now: nothing it refused is admitted.
    if (after.some((g) => g.effect === 'forbid' && !g.conditional && headContains(g, f))) continue;
    // A forbid new in after with a head as wide: this may be it, rewritten.
    const changed = cedar(after).some((g) => g.effect === 'forbid' && headContains(g, f) && !oldMeanings.has(meaning(g)));
    items.push(
      changed
        ? { kind: 'unknown', what: `forbid ${f.id} (${head(f)}) changed: cannot tell whether it still refuses all it did` }
        : { kind: 'added', what: `forbid ${f.id} removed: ${head(f)}` },
    );
  }
  return items;
}
