import { ProxyError } from '../../errors/index.ts';
import { type LimitScope, limitScopes, secondsToNextDay } from '../../policy/rate-limits.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * The agent's, the grant's and the agent-on-grant limits (config `limits:`): after the rules (a
 * refused request spends nothing), before the credential (a limited request costs no refresh).
 * Rates first, kept in this process (429 rate_limited with Retry-After); then the day's request
 * quotas, shared through the store (429 quota_exhausted, Retry-After: until the next UTC day).
 * Returns a promise only when a quota's block of requests must be reserved in the store.
 */
export const limits: HeadStage = {
  name: 'limits',
  injected: true,
  run(request) {
    const { agent, decisions } = request.conn;
    const grant = request.grant!;
    const scopes = limitScopes(decisions.config, agent.id, grant.id);
    if (scopes.length === 0) return;
    const now = decisions.now();
    const verdict = decisions.rates.take(scopes, now.getTime());
    if (!verdict.ok) {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      request.draft.event.limit = verdict.scope.kind;
      throw new ProxyError('rate_limited', `${verdict.scope.name} is over its rate of ${verdict.rate.text} (burst ${verdict.rate.burst})`, {
        grant: grant.id,
        hint: `retry after ${seconds} s`,
        retryAfter: seconds,
      });
    }
    return takeQuotas(
      request,
      scopes.filter((s) => s.limits.quota?.requests !== undefined),
      now,
    );
  },
};

function takeQuotas(request: StagedRequest, scopes: readonly LimitScope[], now: Date): void | Promise<void> {
  for (let i = 0; i < scopes.length; i++) {
    const scope = scopes[i]!;
    const taken = request.conn.decisions.quotas.take(scope, scope.limits.quota!.requests!, now);
    if (taken === true) continue;
    if (taken === false) throw exhausted(request, scope, now);
    return taken.then(
      (ok) => {
        if (!ok) throw exhausted(request, scope, now);
        return takeQuotas(request, scopes.slice(i + 1), now);
      },
      (err: unknown) => {
        // The store could not be written (its database is down): the quota cannot be counted, so
        // the request is refused rather than let through uncounted.
        if (err instanceof ProxyError) throw err;
        throw new ProxyError('internal_error', `${scope.name}'s request quota cannot be counted: the store is unavailable`, {
          grant: request.grant!.id,
          cause: err,
          hint: "retry once the store is back; /readyz shows the store's state",
        });
      },
    );
  }
}

function exhausted(request: StagedRequest, scope: LimitScope, now: Date): ProxyError {
  const seconds = secondsToNextDay(now);
  const resets = new Date(now.getTime() + seconds * 1000).toISOString();
  request.draft.event.limit = scope.kind;
  return new ProxyError(
    'quota_exhausted',
    `${scope.name} has used its ${scope.limits.quota!.requests} requests for today (UTC); the quota resets at ${resets}`,
    {
      grant: request.grant!.id,
      hint: `retry after ${resets}`,
      retryAfter: seconds,
    },
  );
}
