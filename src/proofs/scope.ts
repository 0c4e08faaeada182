// What a policy's head says about where it applies (principal, action, resource) and what its
// conditions read, from Cedar's own parse (policyToJson): the facts lint, replay and the "authority
// added" summary reason with. Anything the head says that is not an exact entity (`in`, `is`, a
// slot) is taken as "any": wider, never narrower, so a conclusion drawn from it errs towards
// reporting, not towards silence.

import type { PolicySource } from '../policy/cedar/contract.ts';
import { loadCedarEngine } from '../policy/cedar/engine.ts';

export interface PolicyScope {
  readonly id: string;
  readonly origin: string;
  readonly text: string;
  readonly effect: 'permit' | 'forbid';
  /** The agent named by `principal == Agent::"…"`; undefined: any principal (or one this analysis reads as any). */
  readonly agent: string | undefined;
  /** The grant named by `resource == Grant::"…"`; undefined: any. */
  readonly grant: string | undefined;
  /** The actions named (`request`, `mcp_call`); undefined: any. */
  readonly actions: readonly string[] | undefined;
  /** Has a when or unless clause. */
  readonly conditional: boolean;
  /** The context attributes its conditions read (`body_size`, `path`…). */
  readonly reads: ReadonlySet<string>;
}

/** Context attributes the audit log does not keep: a policy reading them cannot be replayed from it. */
export const NOT_RECORDED = ['body_size', 'query_keys'] as const;

export async function scopesOf(policies: readonly PolicySource[]): Promise<PolicyScope[]> {
  const cedar = await loadCedarEngine();
  return policies.map((p) => {
    const answer = cedar.policyToJson(p.text);
    if (answer.type !== 'success') throw new Error(`${p.origin}: ${answer.errors[0]?.message ?? 'does not parse'}`);
    const json = answer.json;
    const reads = new Set<string>();
    for (const clause of json.conditions) collectReads(clause.body, reads);
    return {
      id: p.id,
      origin: p.origin,
      text: p.text,
      effect: json.effect,
      agent: exactId(json.principal, 'Agent'),
      grant: exactId(json.resource, 'Grant'),
      actions: actionIds(json.action),
      conditional: json.conditions.length > 0,
      reads,
    };
  });
}

type Head = { op: string; entity?: unknown; entities?: unknown };

function uid(value: unknown): { type: string; id: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = ('__entity' in value ? (value as { __entity: unknown }).__entity : value) as { type?: unknown; id?: unknown };
  return typeof v.type === 'string' && typeof v.id === 'string' ? { type: v.type, id: v.id } : undefined;
}

function exactId(head: Head, type: string): string | undefined {
  if (head.op !== '==') return undefined;
  const entity = uid(head.entity);
  return entity !== undefined && entity.type.split('::').at(-1) === type ? entity.id : undefined;
}

function actionIds(head: Head): string[] | undefined {
  if (head.op === '==') {
    const one = uid(head.entity);
    return one === undefined ? undefined : [one.id];
  }
  if (head.op === 'in' && Array.isArray(head.entities)) {
    const all = head.entities.map(uid);
    return all.every((e) => e !== undefined) ? all.map((e) => e!.id) : undefined;
  }
  return undefined;
}

/** Every `context.X`, `context has X` and `context["X"]` in an expression (Cedar's JSON gives all three as `.` or `has`). */
function collectReads(expr: unknown, into: Set<string>): void {
  if (Array.isArray(expr)) {
    for (const e of expr) collectReads(e, into);
    return;
  }
  if (typeof expr !== 'object' || expr === null) return;
  for (const [key, value] of Object.entries(expr)) {
    if ((key === '.' || key === 'has') && typeof value === 'object' && value !== null) {
      const access = value as { left?: unknown; attr?: unknown };
      if (isContext(access.left) && typeof access.attr === 'string') into.add(access.attr);
    }
    collectReads(value, into);
  }
}

function isContext(expr: unknown): boolean {
  return typeof expr === 'object' && expr !== null && (expr as { Var?: unknown }).Var === 'context';
}

/** Whether a policy's head can match this agent and grant (conditions aside). */
export function scopeCovers(scope: PolicyScope, agent: string, grant: string): boolean {
  return (scope.agent === undefined || scope.agent === agent) && (scope.grant === undefined || scope.grant === grant);
}

/** Whether `wide`'s head matches everything `narrow`'s does. */
export function headContains(wide: PolicyScope, narrow: PolicyScope): boolean {
  const within = (w: string | undefined, n: string | undefined) => w === undefined || w === n;
  const actions = wide.actions === undefined || narrow.actions?.every((a) => wide.actions!.includes(a)) === true;
  return within(wide.agent, narrow.agent) && within(wide.grant, narrow.grant) && actions;
}
