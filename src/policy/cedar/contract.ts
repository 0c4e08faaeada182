// The seam between policy as code's parts (issue 88), written before them so that the engine (this
// folder), the proxy's stages and the proof commands (policy test | diff | check | lint) can be built
// side by side. Types only: the folder's other files implement them.
//
// What the combined policy admits (Cedar's semantics over one set): a request is allowed when at
// least one policy permits it and none forbids it. The set is the agent's YAML rules, compiled
// (yaml-compile.ts; their ids are `yaml:agents.NAME.rules[i]`), plus every Cedar file
// (`<home>/policies/*.cedar`, `policy.files`). A grant the agent does not hold is never reached: the
// grant is chosen before the policy is asked, so a Cedar permit cannot hand an agent another grant.
// Anything the engine cannot judge (a policy that errors on the request, a context it cannot build)
// refuses.
//
// Who evaluates what: YAML rules keep their evaluator (rules.ts: several readings of a path, warn
// mode, approvals, max_body holds, purposes), which is exactly the compiled YAML policies' meaning;
// Cedar's engine evaluates the Cedar files (`LoadedPolicy.judge`). One function (decide.ts) combines
// the two answers under Cedar's rule, and the access stage, `policy check` and `policy test` all call
// it, so the proxy and the proofs cannot disagree.

/** Cedar's action for a request. `mcp_call` is one JSON-RPC tools/call on an MCP endpoint. */
export type PolicyAction = 'request' | 'mcp_call';

/** The facts a policy may read, as the schema (schema.ts, `keyway policy schema`) names them. */
export interface PolicyContext {
  readonly method: string;
  /** Lower case, as keyway routed it. */
  readonly host: string;
  readonly port: number;
  /** The path as the upstream will read it (request-path.ts's normal reading), without the query. */
  readonly path: string;
  /** The query's parameter names, sorted and deduplicated; never their values. */
  readonly queryKeys: readonly string[];
  /** Content-Length when declared; undefined for a body of unknown size (then a policy reading it errors, and refuses). */
  readonly bodySize: number | undefined;
  readonly time: Date;
  readonly sourceIp: string;
  readonly mcpTool?: string | undefined;
  readonly model?: string | undefined;
  readonly spendTodayUsd?: number | undefined;
  /** The anomaly signals the agent's own history raised (src/anomaly/); undefined where anomaly is off for it. */
  readonly signals?: readonly string[] | undefined;
}

/** One question: may this agent (and each of its parents, once delegation lands) do this on this grant? */
export interface PolicyQuery {
  readonly agent: string;
  /** The agent's parents, nearest last (empty without delegation). */
  readonly parents: readonly string[];
  readonly action: PolicyAction;
  readonly grant: string;
  readonly context: PolicyContext;
}

/** Cedar's answer, with the ids of the policies that decided. */
export interface PolicyAnswer {
  readonly allowed: boolean;
  /** Refused: the forbids that matched (empty when no permit matched). Allowed: the permits that matched. */
  readonly deciding: readonly string[];
  /** Policies that failed on this request (a missing optional attribute, an overflow): they count as not matching, and a failed forbid refuses. */
  readonly errors: readonly string[];
}

/** Where one policy came from: a YAML rule, or a file and its line. */
export interface PolicySource {
  /** The `@id("…")` annotation, else `yaml:agents.NAME.rules[i]`, else `FILE:LINE`. */
  readonly id: string;
  /** `yaml:agents.NAME.rules[i]` or `FILE:LINE:COLUMN`. */
  readonly origin: string;
  /** The policy's Cedar text. */
  readonly text: string;
}

/** A policy set loaded from a config and its files: parsed once, judged many times. */
export interface LoadedPolicy {
  /** `sha256:` and the hex of the compiled set in its canonical form (hash.ts). */
  readonly hash: string;
  /** The Cedar files read, absolute paths, in the order read. */
  readonly files: readonly string[];
  readonly policies: readonly PolicySource[];
  /** Whether any Cedar file exists: without one, Cedar's engine is never loaded and YAML rules alone decide, as before. */
  readonly hasCedarFiles: boolean;
  /**
   * Judges one query against the Cedar files' policies that can apply to its agent and grant (the
   * slice made at load). Without Cedar files: no policy matches (allowed false, deciding empty).
   */
  judge(query: PolicyQuery): PolicyAnswer;
}
