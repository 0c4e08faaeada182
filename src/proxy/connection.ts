import type { Agent } from '../credentials/agents.ts';
import type { Grant } from '../credentials/grant.ts';
import type { ProxyTables } from '../credentials/tables.ts';
import { ProxyError } from '../errors/index.ts';
import type { IdentityVerifier } from '../identity-tokens/verifier.ts';
import type { RouteDecision } from '../policy/access.ts';
import type { Decisions, Issuing, Records, Transport } from './contract.ts';
import type { ProxyRuntime } from './runtime.ts';
import type { Anomalies, Captures, Spending } from './stages/views.ts';
import { formatAuthority, type Target } from './target.ts';
import { type SignIn, signInOf, standingOf } from './agent-standing.ts';
import { ModelMemo } from './stages/model-memo.ts';

/**
 * What keyway does with a connection, decided once when it is identified:
 * intercept: TLS terminated (or plain HTTP read) and every request run through the stages;
 * refuse-inside: a host keyway intercepts but this agent may not use, answered inside TLS;
 * self-check: keyway.internal, answered by keyway itself; tunnel: bytes both ways, unread.
 */
export type Route =
  | { readonly kind: 'intercept' }
  | { readonly kind: 'refuse-inside'; readonly refusal: RefusedInside }
  | { readonly kind: 'self-check' }
  | { readonly kind: 'tunnel' };

const INTERCEPT: Route = Object.freeze({ kind: 'intercept' });

/**
 * The decision taken at CONNECT time, carried on the connection's context: answered inside TLS
 * (refuse-inside.ts).
 */
export class RefusedInside {
  readonly error: ProxyError;
  /** Requests answered on this connection; none means the CONNECT's own line is written. */
  answered = 0;

  constructor(error: ProxyError) {
    this.error = error;
  }
}

/**
 * One per CONNECT (and per plain http:// request): who is calling, where to, and the route. Every
 * request on the connection reads it; nothing per request is kept here.
 */
export class Connection {
  /** Everything, for the drivers (connect, intercept, exchange); a stage reads one of the views below. */
  readonly runtime: ProxyRuntime;
  /** The same runtime by what it is for (contract.ts; a feature's, stages/views.ts), so a stage's reach shows in what it names. */
  readonly decisions: Decisions;
  readonly issuing: Issuing & Captures;
  readonly records: Records;
  readonly transport: Transport;
  readonly spending: Spending;
  readonly anomalies: Anomalies;
  readonly target: Target;
  /** When the connection was accepted (epoch ms): proxy.timeouts.max_connection_age counts from here. */
  readonly openedAt = Date.now();
  /** The agent as it signed in, and how: what is checked again when the tables or identities change. */
  readonly #signedIn: Agent;
  readonly #signIn: SignIn;
  #agent: Agent;
  #standingOn: { tables: ProxyTables; identities: IdentityVerifier | undefined } | undefined;
  #revoked: string | undefined;
  /** The client's address, as the audit line names it. */
  readonly client: string;
  /** How the connection reached keyway when it was not through the proxy listener (audit `via`). */
  readonly via: 'transparent' | 'contain' | undefined;
  #route: Route | undefined;
  /** How keyway talks to the upstream: https inside intercepted TLS (set by intercept.ts), http otherwise. */
  scheme: 'https' | 'http' = 'http';
  #decidedOn: ProxyTables | undefined;
  #decision: RouteDecision<Grant> | undefined;
  #origin: string | undefined;
  #originScheme: 'https' | 'http' | undefined;
  #modelMemo: ModelMemo | undefined;

  constructor(runtime: ProxyRuntime, target: Target, agent: Agent, client: string, via?: 'transparent' | 'contain') {
    this.runtime = runtime;
    this.decisions = runtime;
    this.issuing = runtime;
    this.records = runtime;
    this.transport = runtime;
    this.spending = runtime;
    this.anomalies = runtime;
    this.target = target;
    this.#signedIn = agent;
    this.#agent = agent;
    this.#signIn = signInOf(agent, via !== undefined);
    this.#standingOn = { tables: runtime.tables(), identities: runtime.identities() };
    this.client = client;
    this.via = via;
  }

  /**
   * The agent as it stands now: its grants, rules and limits as the tables have them since the last
   * change (a reload, `keyway agents …`), not as they were at CONNECT. Once revoked, the agent as
   * it last stood (for the audit line); standing() refuses.
   */
  get agent(): Agent {
    this.#checkStanding();
    return this.#agent;
  }

  /**
   * Why this connection may no longer be served, or undefined: its agent removed, its key rotated,
   * its identity no longer mapped to it, or the connection older than proxy.timeouts.max_connection_age.
   */
  endReason(now = Date.now()): string | undefined {
    this.#checkStanding();
    if (this.#revoked !== undefined) return this.#revoked;
    const expiresAt = this.#agent.expiresAt;
    if (expiresAt !== undefined && now >= expiresAt) return `agent "${this.#agent.id}" expired at ${new Date(expiresAt).toISOString()}`;
    const maxAge = this.runtime.config.proxy.timeouts.max_connection_age;
    if (now - this.openedAt >= maxAge) return `the connection is older than proxy.timeouts.max_connection_age (${Math.round(maxAge / 1000)} s)`;
    return undefined;
  }

  /** Throws the 407 that a request on a connection past its end gets (stage grant, for every request). */
  standing(): void {
    const reason = this.endReason();
    if (reason === undefined) return;
    throw new ProxyError('proxy_auth_required', `this connection no longer speaks for its agent: ${reason}`, {
      hint: 'open a new connection with the current proxy credentials',
    });
  }

  #checkStanding(): void {
    if (this.#revoked !== undefined) return;
    const tables = this.runtime.tables();
    const identities = this.runtime.identities();
    const seen = this.#standingOn;
    if (seen !== undefined && seen.tables === tables && seen.identities === identities) return;
    this.#standingOn = { tables, identities };
    const standing = standingOf(this.#signIn, this.#signedIn, tables.agents, identities);
    if ('revoked' in standing) this.#revoked = standing.revoked;
    else this.#agent = standing.agent;
  }

  /**
   * `scheme://host:port` of the target, as every request on the connection goes upstream: made once
   * (again only if the scheme is set after), not two strings per request.
   */
  get origin(): string {
    if (this.#origin === undefined || this.#originScheme !== this.scheme) {
      this.#originScheme = this.scheme;
      this.#origin = `${this.scheme}://${formatAuthority(this.target)}`;
    }
    return this.#origin;
  }

  /** Stage budget's last model route and spend scope on this connection, for the next request alike (model-memo.ts). */
  get modelMemo(): ModelMemo {
    this.#modelMemo ??= new ModelMemo();
    return this.#modelMemo;
  }

  /** What keyway does with this connection; a plain http:// request is always intercepted. */
  get route(): Route {
    return this.#route ?? INTERCEPT;
  }

  /** Decides the route: once, when the CONNECT is identified (connect.ts). */
  decide(route: Route): this {
    if (this.#route !== undefined) throw new Error("a connection's route is decided once");
    this.#route = route;
    return this;
  }

  /**
   * Which grants cover this agent and target: decided once, and again only after the tables
   * change (a reload, a grant added or removed), so a long-lived connection follows the store.
   */
  grants(): RouteDecision<Grant> {
    const tables = this.runtime.tables();
    if (tables !== this.#decidedOn || this.#decision === undefined) {
      this.#decidedOn = tables;
      this.#decision = tables.router.decide(this.agent, this.target.host, this.target.port);
    }
    return this.#decision;
  }
}
