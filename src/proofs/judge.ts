// One request judged as the proxy's head stages judge it, without a connection, a credential or an
// upstream: the grant stage (the grants covering the host, those the agent holds, X-Keyway-Grant),
// then the policy (the agent's YAML rules and the Cedar files, combined by the engine). `policy
// check` asks it about a request not yet sent; `policy test` and `policy diff` about recorded ones.
//
// The grants and agents are the config's and the store's (ids, domains and grant lists; never a
// secret), as the proxy's tables have them.

import type { Config } from '../config/index.ts';
import type { ProxyError } from '../errors/index.ts';
import { chooseGrant, GrantRouter, type RoutedGrant } from '../policy/access.ts';
import type { LoadedPolicy } from '../policy/cedar/contract.ts';
import { patternMatches } from '../policy/domains.ts';
import { decideMcp, decidePolicy } from './engine.ts';

export type Stage = 'grant' | 'rules' | 'cedar';

export interface ProofRequest {
  readonly agent: string;
  /** The grant chosen (X-Keyway-Grant, or the recorded one); undefined: the one the host's grants give. */
  readonly grant: string | undefined;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  /** Normalised, without the query. */
  readonly path: string;
  /** `''` or `?…` (a recorded request: `''`, the log keeps none): only its parameter names are read. */
  readonly query: string;
  /** undefined: not known (a recorded request, or a dry run with no body said). */
  readonly bodySize: number | undefined;
  readonly time: Date;
  readonly sourceIp: string;
  /** Methods and paths override headers named: each reading (path × method) is judged, and any refusal refuses, as in the access stage. */
  readonly overrideMethods?: readonly string[] | undefined;
  readonly overridePaths?: readonly string[] | undefined;
  /** On an MCP endpoint: the JSON-RPC methods it carried, and a tools/call's tool (judged as the proxy's mcp stage judges them). */
  readonly mcp?: { readonly methods: readonly string[]; readonly tool: string | undefined } | undefined;
  /** The anomaly signals raised (a recorded line's `signal`): Cedar's context.signal; undefined: none recorded. */
  readonly signals?: readonly string[] | undefined;
}

export interface ProofVerdict {
  /** `pass`: no grant covers the host: forwarded untouched, no credential, no policy asked. */
  readonly outcome: 'allow' | 'deny' | 'pass';
  /** The stage that refused; undefined when allowed. */
  readonly stage: Stage | undefined;
  readonly grant: string | undefined;
  /** The error code a refusal gets. */
  readonly code: string | undefined;
  /** The policy ids that decided (the permits that admitted, or the forbids and rules that refused). */
  readonly deciding: readonly string[];
  readonly reason: string;
  /** Rules that ask more before the request goes (a person's yes, a purpose): allowed, with that said. */
  readonly needs: readonly string[];
}

/** What the store adds to the config: grants and agents made with `keyway grants add` / `agents add` (ids, domains, grants: no secret). */
export interface StoredRouting {
  readonly grants: readonly RoutedGrant[];
  readonly agents: ReadonlyMap<string, readonly string[] | undefined>;
}

/** A config and its policy, ready to judge many requests (the router built once). */
export interface Candidate {
  readonly config: Config;
  readonly policy: LoadedPolicy;
  readonly router: GrantRouter<RoutedGrant>;
  readonly grantIds: ReadonlySet<string>;
  /** The grants each agent holds (undefined: every grant); an agent missing here is unknown. */
  readonly agents: ReadonlyMap<string, ReadonlySet<string> | undefined>;
}

export function candidateOf(config: Config, policy: LoadedPolicy, stored: StoredRouting = { grants: [], agents: new Map() }): Candidate {
  // The config is authoritative for its own ids, as in the proxy's grant and agent tables.
  const grants: RoutedGrant[] = Object.entries(config.grants).map(([id, g]) => ({ id, domains: g.domains }));
  for (const g of stored.grants) if (!Object.hasOwn(config.grants, g.id)) grants.push(g);
  const agents = new Map<string, ReadonlySet<string> | undefined>();
  for (const [id, held] of stored.agents) agents.set(id, held === undefined ? undefined : new Set(held));
  for (const [id, a] of Object.entries(config.agents)) agents.set(id, a.grants === undefined ? undefined : new Set(a.grants));
  return { config, policy, router: new GrantRouter(grants), grantIds: new Set(grants.map((g) => g.id)), agents };
}

export function judgeRequest(candidate: Candidate, request: ProofRequest): ProofVerdict {
  const routed = routeGrant(candidate, request);
  if ('outcome' in routed) return routed;
  const asRequest = decidePolicy(candidate, request, routed.grant);
  if (asRequest.outcome !== 'allow') return asRequest;
  for (const reading of overrideReadings(request)) {
    const named = decidePolicy(candidate, reading, routed.grant);
    if (named.outcome !== 'allow') return named;
  }
  if (request.mcp === undefined) return asRequest;
  // Then each JSON-RPC message, as the mcp stage judges it after the access stage.
  for (const method of request.mcp.methods) {
    const message = decideMcp(candidate, request, routed.grant, method, method === 'tools/call' ? request.mcp.tool : undefined);
    if (message.outcome !== 'allow') return message;
  }
  return asRequest;
}

/** Each method and path an override header named, paired with the request's own and each other (the request itself left out). */
function overrideReadings(request: ProofRequest): ProofRequest[] {
  const methods = [request.method, ...(request.overrideMethods ?? [])];
  const paths = [request.path, ...(request.overridePaths ?? [])];
  if (methods.length === 1 && paths.length === 1) return [];
  return paths.flatMap((path) => methods.map((method) => ({ ...request, method, path }))).slice(1);
}

/** The grant stage: which grant the request gets, or the verdict that ends it there. */
function routeGrant(candidate: Candidate, request: ProofRequest): { grant: string } | ProofVerdict {
  const { config, router } = candidate;
  const held = candidate.agents.get(request.agent);
  const decision = router.decide({ id: request.agent, grants: held }, request.host, request.port);
  if (decision.kind === 'unmatched') {
    if (config.proxy.unmatched === 'deny' && !config.proxy.allow_tunnel.some((p) => patternMatches(p, request.host, request.port)))
      return refused('grant', undefined, 'host_not_allowed', [], `no grant covers ${request.host} and proxy.unmatched is deny`);
    return {
      outcome: 'pass',
      stage: undefined,
      grant: undefined,
      code: undefined,
      deciding: [],
      reason: `no grant covers ${request.host}:${request.port}: forwarded untouched, with no credential and no policy asked`,
      needs: [],
    };
  }
  if (decision.kind === 'refuse') return fromError(decision.error);
  try {
    return { grant: chooseGrant(decision.candidates, request.grant).id };
  } catch (err) {
    return fromError(err as ProxyError);
  }
}

function fromError(err: ProxyError): ProofVerdict {
  return refused('grant', err.grant, err.code, [], err.message);
}

export function refused(stage: Stage, grant: string | undefined, code: string, deciding: readonly string[], reason: string): ProofVerdict {
  return { outcome: 'deny', stage, grant, code, deciding, reason, needs: [] };
}
