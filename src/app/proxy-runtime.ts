import { CredentialSource } from '../credentials/credential-source.ts';
import { CommandSecrets } from '../credentials/providers/cmd-secrets.ts';
import { SourceSecrets } from '../credentials/sources/source-secrets.ts';
import { SharedValues } from '../credentials/sources/shared-values.ts';
import { HeldValues } from '../proxy/stages/held-values.ts';
import { CaptureBook } from '../capture/store/records.ts';
import { leaseRecordId, type LeaseRecord } from '../credentials/lease-record.ts';
import { AgentLoad } from '../proxy/agent-load.ts';
import { OpenExchanges } from '../proxy/open-exchanges.ts';
import { revocation } from '../proxy/stages/open-exchange.ts';
import { RateLimiter } from '../policy/rate-limits.ts';
import { currentIdentities } from '../identity-tokens/current.ts';
import { checkDestination } from '../proxy/destination.ts';
import type { ProxyRuntime } from '../proxy/runtime.ts';
import { parseAuthority } from '../proxy/target.ts';
import type { Parts } from './parts.ts';
import type { AddressInfo } from 'node:net';
import { delegationDoor } from './delegation-door.ts';
import type { DecisionTelemetry } from '../observability/otlp.ts';

/**
 * The one object the proxy reads, built once from start's parts. Config and tables are read
 * through `live` on each request, so a reload or a store change needs no new runtime.
 */
export function proxyRuntime(parts: Parts, proxyAddress: () => AddressInfo | undefined = () => undefined): ProxyRuntime {
  const { live, options, contexts, usage, services } = parts;
  const { store } = services;
  const runtime: ProxyRuntime = {
    get config() {
      return live.config;
    },
    ownPorts: parts.ownPorts,
    listeners: parts.listeners,
    callerKey: options.callerKey,
    tables: () => live.tables,
    // Identity tokens' issuers (identities:): keys fetched by the upstream client, through the egress checks.
    // Their key URLs are judged as an agent's destination is (keyway's own listeners refused), before each fetch.
    identities: currentIdentities(
      () => live.config,
      parts.upstream.dispatcher,
      options.tokenClock,
      (url) => checkDestination(runtime, parseAuthority(url.host, url.protocol === 'https:' ? 443 : 80)),
    ),
    // Secret commands' output lives in this process's memory only; a reload that changes one drops it.
    // Secret sources' values (secret_sources:): fetched once per ttl across the processes on the store.
    credentials: new CredentialSource(
      parts.tokens,
      parts.renewing,
      new CommandSecrets({ env: parts.env, config: () => live.config }),
      parts.minted,
      new SourceSecrets({
        env: parts.env,
        config: () => live.config,
        observer: parts.metrics,
        warn: (line) => parts.logger.warn(line),
        shared: new SharedValues(store, services.paths.locksDir),
      }),
      // Types that issue per request (a token exchange) reach their token endpoints as the renewals do.
      { dispatcher: parts.tokenEndpoints.dispatcher, timeoutMs: live.config.oauth.token_timeout, env: parts.env, home: live.config.home },
    ),
    audit: parts.audit,
    // Each committed decision: counted, and exported when telemetry.otlp is set.
    metrics: parts.telemetry === undefined ? parts.metrics : countedAndExported(parts.metrics, parts.telemetry),
    tlsContext: (host) => contexts.get(host),
    upstream: parts.upstream,
    load: new AgentLoad(() => live.config.proxy),
    openExchanges: new OpenExchanges(revocation),
    // Under proxy.workers, the primary's buckets: a rate is counted once, not once per worker.
    rates: options.worker?.rates ?? options.rates ?? new RateLimiter(),
    quotas: parts.quotas,
    spend: parts.spending,
    approvals: parts.approvals,
    anomaly: parts.anomaly,
    resolve: live.resolve,
    logger: parts.logger,
    grantUsed: (id) => usage.touch(id),
    grantAnswered: (id, status) => usage.answered(id, status),
    // Captured tokens (login_capture): in the store, sealed; a refresh token's lock across processes.
    captures: new CaptureBook(store, services.paths.locksDir),
    held: new HeldValues(store),
    // An agent's own children, minted and revoked through keyway.internal (proxy/delegation-door.ts).
    delegation: delegationDoor(parts, proxyAddress),
    now: options.now ?? (() => new Date()),
    policy: () => live.policy,
    leases: {
      get: (agentId, grantId) => store.get<LeaseRecord>(leaseRecordId(agentId, grantId)),
      start: async (record) => {
        const id = leaseRecordId(record.agent, record.grant);
        await store.update((draft) => {
          if (!draft.get(id)) draft.set(id, record);
        });
      },
    },
  };
  return runtime;
}

function countedAndExported(metrics: Parts['metrics'], telemetry: DecisionTelemetry): Pick<Parts['metrics'], 'request'> {
  return {
    request(event, upstreamSeconds) {
      metrics.request(event, upstreamSeconds);
      telemetry.record(event);
    },
  };
}
