import { LRUCache } from 'lru-cache';
import { cedarContext, cedarEntities } from './context.ts';
import type { PolicyAnswer, PolicyQuery } from './contract.ts';
import type { CedarEngine } from './engine.ts';
import type { ParsedPolicy, ScopeConstraint } from './parse.ts';

// Judging with Cedar's engine, a slice at a time: the policies whose principal and resource scope
// can match an agent (or one of its parents) and a grant, handed to the engine once (it keeps them
// parsed, per thread) and asked per request. A policy whose scope names some other agent or grant
// is never evaluated for this one.
//
// An answer is remembered: Cedar's decision is a function of the policies (fixed for this judge),
// the principal chain, the action, the grant and the context, and the context holds the clock only
// to the minute (context.ts), so the same request within a minute gets the same answer without
// crossing into the engine again. Asking the engine costs ~100 µs and more with each policy in the
// slice (docs/perf/policy.md); an agent asks the same few things over and over.

/** Answers remembered per judge (per policy load): a few MiB at most, and gone at the next reload. */
const REMEMBERED_ANSWERS = 4096;

const NOTHING: PolicyAnswer = Object.freeze({ allowed: false, deciding: Object.freeze([]), errors: Object.freeze([]) });

/** What decided when the engine could not judge the request at all (contract.ts: that refuses). */
export const UNJUDGED = 'keyway:unjudged';

let generation = 0;

/** A judge over a set of parsed policies; the engine is already loaded. */
export function makeJudge(engine: CedarEngine, policies: readonly ParsedPolicy[]): (query: PolicyQuery) => PolicyAnswer {
  const load = ++generation;
  const effects = new Map(policies.map((p) => [p.id, p.effect]));
  const slices = new Map<string, string | undefined>();

  const sliceFor = (query: PolicyQuery): string | undefined => {
    const key = JSON.stringify([query.agent, query.parents, query.grant]);
    if (slices.has(key)) return slices.get(key);
    const principals = new Set([query.agent, ...query.parents]);
    const members = policies.filter(
      (p) => scopeMatches(p.json.principal, 'Agent', principals) && scopeMatches(p.json.resource, 'Grant', new Set([query.grant])),
    );
    let id: string | undefined;
    if (members.length > 0) {
      id = `keyway:${load}:${slices.size}`;
      const parsed = engine.preparsePolicySet(id, { staticPolicies: Object.fromEntries(members.map((p) => [p.id, p.text])) });
      // Each policy parsed when the file was loaded: a failure here is the engine's, and refuses.
      if (parsed.type === 'failure') throw new Error(parsed.errors[0]?.message ?? 'the engine refused a slice');
    }
    slices.set(key, id);
    return id;
  };

  const remembered = new LRUCache<string, PolicyAnswer>({ max: REMEMBERED_ANSWERS });

  // A path with escapes left in it (%2F, %40, %C3%A9: request-path.ts decodes only unreserved ones)
  // is judged twice: as sent, and decoded, as the upstream reads it (WSGI's PATH_INFO, nginx's
  // location matching; the YAML rules read the decoded segments too). A forbid on either reading
  // refuses; a permit must admit both.
  return (query) => {
    const decoded = decodedReading(query.context.path);
    const asSent = judgeOne(query);
    if (decoded === undefined || (!asSent.allowed && asSent.deciding.length > 0)) return asSent;
    const asDecoded = judgeOne({ ...query, context: { ...query.context, path: decoded } });
    if (!asDecoded.allowed && asDecoded.deciding.length > 0) return asDecoded;
    return asSent.allowed ? asDecoded : asSent;
  };

  function judgeOne(query: PolicyQuery): PolicyAnswer {
    let slice: string | undefined;
    let context: ReturnType<typeof cedarContext>;
    let key: string;
    try {
      slice = sliceFor(query);
      if (slice === undefined) return NOTHING;
      context = cedarContext(query.context);
      key = JSON.stringify([query.action, query.agent, query.parents, query.grant, context]);
    } catch (err) {
      return unjudged(err);
    }
    const known = remembered.get(key);
    if (known !== undefined) return known;
    const answer = ask(query, slice, context);
    // An answer that says the engine could not judge is not kept: the next request asks again.
    if (!answer.deciding.includes(UNJUDGED)) remembered.set(key, answer);
    return answer;
  }

  function ask(query: PolicyQuery, slice: string, context: ReturnType<typeof cedarContext>): PolicyAnswer {
    let answer: ReturnType<CedarEngine['statefulIsAuthorized']>;
    try {
      answer = engine.statefulIsAuthorized({
        principal: { type: 'Agent', id: query.agent },
        action: { type: 'Action', id: query.action },
        resource: { type: 'Grant', id: query.grant },
        context,
        entities: cedarEntities(query),
        preparsedPolicySetId: slice,
        // No schema here: the context is keyway's own, built to the schema's types by context.ts
        // (its test checks it against the schema); checking each request again costs half as much
        // as judging it (bench/policy-cedar.ts).
      });
    } catch (err) {
      return unjudged(err);
    }
    // A request the engine refuses (a context it cannot read) refuses.
    if (answer.type === 'failure') return { allowed: false, deciding: [UNJUDGED], errors: answer.errors.map((e) => e.message) };
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => e.policyId);
    // A forbid that failed on this request refuses (contract.ts): its author meant to refuse something here.
    const failedForbids = errors.filter((id) => effects.get(id) === 'forbid');
    if (failedForbids.length > 0) return { allowed: false, deciding: failedForbids, errors };
    return { allowed: decision === 'allow', deciding: diagnostics.reason, errors };
  }
}

/** The path decoded, as a server that decodes it reads it (`%2F` a slash, doubled slashes collapsed), or undefined when it has no escape. */
function decodedReading(path: string): string | undefined {
  if (!path.includes('%')) return undefined;
  try {
    return decodeURIComponent(path).replace(/\/{2,}/g, '/');
  } catch {
    return undefined; // a bad escape: request-path.ts refuses it before any policy is asked
  }
}

function unjudged(err: unknown): PolicyAnswer {
  return { allowed: false, deciding: [UNJUDGED], errors: [`the request could not be put to the policy: ${(err as Error).message}`] };
}

/** Whether a policy's scope (principal or resource) can match one of `ids` of `type`. */
function scopeMatches(scope: ScopeConstraint, type: string, ids: ReadonlySet<string>): boolean {
  switch (scope.op) {
    case 'All':
      return true;
    case '==':
      return scope.entity === undefined || (scope.entity.type === type && ids.has(scope.entity.id));
    case 'in':
      // `in` an entity: one of the chain (the agent is in itself and in its parents).
      return scope.entity === undefined || (scope.entity.type === type && ids.has(scope.entity.id));
    case 'is':
      return scope.entity_type === type && (scope.in?.entity === undefined || (scope.in.entity.type === type && ids.has(scope.in.entity.id)));
    default:
      return true; // a shape keyway does not know: evaluated, never skipped
  }
}
