import type { SpendScope } from '../../spend/core/ledger.ts';
import { type ModelApiHint, type ModelRoute, modelRoute } from '../../spend/core/meters/routes.ts';

/**
 * Stage budget's reading of the last request on one connection (issue 63): its model route and its
 * spend scope, given again to the next request that would come out the same. A connection to a
 * model API sends the same call over and over (`POST /v1/messages`), and reading it afresh made
 * strings, match arrays and objects on every request (docs/perf/spend.md: ~0.4 KiB a metered answer).
 *
 * What is reused: only a result computed from exactly the same inputs (the grant's hint, the host,
 * the method and the path compared as strings; the agent, grant and end user compared as values),
 * so a reused reading is the one modelRoute would give. One entry per connection: bounded, and
 * nothing another connection or agent sent can be in it. Results are frozen: a request cannot change
 * what the next one is given.
 */
export class ModelMemo {
  #api: ModelApiHint | null = null;
  #host = '';
  #method = '';
  #path = '';
  #route: ModelRoute | undefined;
  #scope: SpendScope | undefined;

  /** modelRoute(api, host, method, path), reused when the last call had the same four. */
  route(api: ModelApiHint, host: string, method: string, path: string): ModelRoute | undefined {
    if (this.#api === api && this.#host === host && this.#method === method && this.#path === path) return this.#route;
    const route = modelRoute(api, host, method, path);
    if (route?.kind === 'metered') Object.freeze(route.plan);
    this.#route = route === undefined ? undefined : Object.freeze(route);
    this.#api = api;
    this.#host = host;
    this.#method = method;
    this.#path = path;
    return this.#route;
  }

  /** `{agent, grant, end_user, ancestors}`, the same frozen object while they stay the same (ancestors: the same list). */
  scope(agent: string | null, grant: string, endUser: string | null, ancestors?: readonly string[] | undefined): SpendScope {
    const last = this.#scope;
    if (last !== undefined && last.agent === agent && last.grant === grant && last.end_user === endUser && last.ancestors === ancestors) return last;
    this.#scope = Object.freeze({ agent, grant, end_user: endUser, ancestors });
    return this.#scope;
  }
}
