// The figures keyway observes as they happen (latencies, token calls, secret source fetches), kept
// in plain numbers from the start (histogram.ts, tally.ts) and read by prom-client only at a scrape
// (prom-metrics.ts registers them, in this order, after the request tallies).

import { PlainHistogram } from './histogram.ts';
import { Tally } from './tally.ts';

export interface Observed {
  readonly upstream: PlainHistogram;
  readonly tokenRequests: Tally; // grant, result
  readonly tokenSeconds: PlainHistogram; // grant
  readonly refreshes: Tally; // grant
  readonly sourceFetches: Tally; // source, outcome
  /** Each secret source's last fetch: 1 ok, 0 failed. */
  readonly sourceUp: Map<string, 0 | 1>;
  readonly auditWrite: PlainHistogram; // result
}

export function newObserved(): Observed {
  return {
    upstream: new PlainHistogram({
      name: 'keyway_upstream_response_seconds',
      help: 'Time from sending a request upstream to its response head, for intercepted requests.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    tokenRequests: new Tally(),
    tokenSeconds: new PlainHistogram({
      name: 'keyway_token_request_seconds',
      help: 'Token endpoint latency by grant, failures included.',
      label: 'grant',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    refreshes: new Tally(),
    sourceFetches: new Tally(),
    sourceUp: new Map(),
    auditWrite: new PlainHistogram({
      name: 'keyway_audit_write_seconds',
      help: 'Time to append one batch of audit lines (lock, append, unlock), by result.',
      label: 'result',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    }),
  };
}
