import { ProxyError } from '../../errors/index.ts';
import { anyRate, type LimitScope, limitScopes, type RateVerdict, secondsToNextDay } from '../../policy/rate-limits.ts';
import type { HeadStage, StagedRequest } from './request.ts';
import { chainLimitScopes } from '../../delegation/chain-limits.ts';

/**
 * The agent's, the grant's and the agent-on-grant limits (config `limits:`): after the rules (a
 * refused request spends nothing), before the credential (a limited request costs no refresh).
 * Rates first, kept in this process or its primary (429 rate_limited with Retry-After); then the day's quotas,
 * shared through the store (429 quota_exhausted, Retry-After: until the next UTC day): body bytes
 * as counted so far (a request under a bytes quota counts its own: stage count-body, and the
 * exchange's close), then requests.
 * Returns a promise only when a quota's block of requests must be reserved in the store.
 */
export const limits: HeadStage = {
  name: 'limits',
  injected: true,
  run(request) {
    const { agent, decisions } = request.conn;
    const grant = request.grant!;
    // A store agent's own limits, read from the table now: a change reaches connections already open.
    // A delegated agent's request counts against each ancestor's limits too (delegation/chain-limits.ts).
    const agents = decisions.tables().agents;
    const scopes =
      agent.parents === undefined || agent.parents.length === 0
        ? limitScopes(decisions.config, agent.id, grant.id, agent.source === 'store' ? agents.get(agent.id)?.storedLimits : undefined)
        : chainLimitScopes(decisions.config, agents, agent.id, agent.parents, grant.id);
    if (scopes.length === 0) return;
    const now = decisions.now();
    const verdict = anyRate(scopes) ? decisions.rates.take(scopes, now.getTime()) : PASSED;
    if (verdict instanceof Promise)
      return verdict.then(
        (v) => afterRates(request, scopes, now, v),
        (err: unknown) => rethrowUncounted(request, err),
      );
    return afterRates(request, scopes, now, verdict);
  },
};

const PASSED: RateVerdict = { ok: true };

/** A rate verdict in hand: refuse, or go on to the day's quotas. */
function afterRates(request: StagedRequest, scopes: readonly LimitScope[], now: Date, verdict: RateVerdict): void | Promise<void> {
  const grant = request.grant!;
  if (!verdict.ok) {
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    request.draft.event.limit = verdict.scope.kind;
    throw new ProxyError('rate_limited', `${verdict.scope.name} is over its rate of ${verdict.rate.text} (burst ${verdict.rate.burst})`, {
      grant: grant.id,
      hint: `retry after ${seconds} s`,
      retryAfter: seconds,
    });
  }
  const byBytes = scopes.filter((s) => s.limits.quota?.bytes !== undefined);
  for (const scope of byBytes)
    if (request.conn.decisions.quotas.bytesUsed(scope, now) >= scope.limits.quota!.bytes!) throw exhausted(request, scope, now, 'bytes');
  if (byBytes.length > 0) request.byteQuota = { scopes: byBytes, sent: 0 };
  return takeQuotas(
    request,
    scopes.filter((s) => s.limits.quota?.requests !== undefined),
    now,
  );
}

/** The shared rates could not be asked (a worker whose primary is gone): refused rather than let through uncounted. */
function rethrowUncounted(request: StagedRequest, err: unknown): never {
  throw new ProxyError('internal_error', 'request rates cannot be counted: the primary process does not answer', {
    grant: request.grant!.id,
    cause: err,
    hint: 'retry; keyway is restarting or stopping',
  });
}

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

function exhausted(request: StagedRequest, scope: LimitScope, now: Date, what: 'requests' | 'bytes' = 'requests'): ProxyError {
  const seconds = secondsToNextDay(now);
  const resets = new Date(now.getTime() + seconds * 1000).toISOString();
  request.draft.event.limit = scope.kind;
  const used = what === 'requests' ? `its ${scope.limits.quota!.requests} requests` : `its ${formatBytes(scope.limits.quota!.bytes!)} of bodies`;
  return new ProxyError('quota_exhausted', `${scope.name} has used ${used} for today (UTC); the quota resets at ${resets}`, {
    grant: request.grant!.id,
    hint: `retry after ${resets}`,
    retryAfter: seconds,
  });
}

/** 2 GiB, 512 MiB, 1000 bytes: as a person reads a quota back. */
function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}
