// The soak's text output: one line per window as it closes, then the totals and the targets.
import { fixed, table } from '../stats.ts';
import { DEFAULT_MAX_LEAVES } from '../../src/tls/contexts.ts';
import type { SoakReport, WindowReport } from './run.ts';
import { FLAT_MIN_RUN_S, FLAT_TAIL_S } from './verdict.ts';

const errorText = (errors: Record<string, number>): string => {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? '0' : entries.map(([k, n]) => `${k} x${n}`).join('; ');
};

export const WINDOW_HEADER = [
  'window',
  'ok/s',
  'p50 ms',
  'p99 ms',
  'max ms',
  'lag p99 ms',
  'in flight',
  'refreshes',
  'RSS MiB',
  'heap MiB',
  'fds',
  'CPU % kw/bench',
  'errors',
];

export function windowRow(w: WindowReport): string[] {
  return [
    `${fixed(w.startS, 0)}-${fixed(w.endS, 0)} s`,
    fixed(w.okPerS, 0),
    fixed(w.latencyMs.p50, 2),
    fixed(w.latencyMs.p99, 2),
    fixed(w.latencyMs.max, 1),
    fixed(w.lagMs.p99, 2),
    String(w.peakInFlight),
    String(w.refreshes),
    fixed(w.rssMiB, 1),
    fixed(w.heapMiB, 1),
    String(w.fds),
    `${fixed(w.keywayCpuPct, 0)}/${fixed(w.benchCpuPct, 0)}`,
    errorText(w.errors),
  ];
}

// Windows print one at a time as the run goes on, so the columns have fixed widths.
const WIDTHS = [13, 6, 7, 7, 7, 10, 9, 9, 8, 8, 5, 14];
const line = (cells: readonly string[]) =>
  cells
    .map((c, i) => c.padEnd(WIDTHS[i] ?? 0))
    .join('  ')
    .trimEnd();

export const windowLine = (w: WindowReport): string =>
  `${line(windowRow(w))}${w.leafCacheFull === undefined ? '' : `  <- leaf cache full (${w.leafCacheFull} hosts minted); RSS should stay flat from here`}`;
export const headerLine = (): string => line(WINDOW_HEADER);

export function summary(r: SoakReport): string {
  const o = r.options;
  const l = r.load;
  const hostsAfterMark = Math.max(1, Math.round(r.newHosts * (1 - (r.rss.markS * 1000) / o.durationMs)));
  const behind = l.lagMs.p99 > 10 || l.sentLate10ms > l.sent * 0.01;
  const lines = [
    '',
    `totals: ${l.slots} requests scheduled over ${fixed(o.durationMs / 1000, 0)} s at ${o.rate}/s; ${l.sent} sent (${fixed((l.sent / l.slots) * 100, 1)}% of the schedule; the rest over the ${o.maxInFlight} in-flight bound), ${l.ok} ok; ${fixed(r.okPerS, 0)} ok/s achieved`,
    `latency from the scheduled time: p50 ${fixed(l.latencyMs.p50, 2)} ms, p99 ${fixed(l.latencyMs.p99, 2)} ms, max ${fixed(l.latencyMs.max, 1)} ms`,
    `generator lag (sent after due): p50 ${fixed(l.lagMs.p50, 2)} ms, p99 ${fixed(l.lagMs.p99, 2)} ms, max ${fixed(l.lagMs.max, 1)} ms; ${l.sentLate10ms} requests sent over 10 ms late` +
      (behind ? ' -- the generator could not keep the schedule: figures reflect this machine, not only keyway' : ' (kept the schedule)'),
    `CPU: keyway got ${fixed(r.cpu.keywayCorePct, 0)}% of a core and spent ${fixed(r.cpu.keywayMsPerRequest, 3)} ms per request; the client and upstreams ${fixed(r.cpu.benchCorePct, 0)}% and ${fixed(r.cpu.benchMsPerRequest, 3)} ms per request` +
      ` (so ${o.rate}/s needs about ${fixed((r.cpu.keywayMsPerRequest * o.rate) / 10, 0)}% + ${fixed((r.cpu.benchMsPerRequest * o.rate) / 10, 0)}% of a core)`,
    `mix: ${r.newHosts} new host names (one per ${o.newHostEveryMs / 1000} s), ${r.tokenEndpoint.refreshed} token refreshes in all (rotating; token lifetime ${o.tokenLifetimeS} s), one request in ${o.oauthEvery} on the oauth2 grant`,
    `RSS: ${fixed(r.rss.growthMiB, 1)} MiB growth ${r.rss.markRule}, over ${hostsAfterMark} new host names in that time: ${fixed((r.rss.growthMiB * 1024) / hostsAfterMark, 0)} KiB a name if they were all of it` +
      ' (keyway keeps a TLS context per name, up to its cache bound)',
    r.leafCacheFullAtS === undefined
      ? `caches: the leaf cache did not fill (fewer than its ${DEFAULT_MAX_LEAVES} hosts); the RSS-flat target needs a run of ${FLAT_MIN_RUN_S / 60} min or more`
      : `caches: the leaf cache was full at ${fixed(r.leafCacheFullAtS, 0)} s (${DEFAULT_MAX_LEAVES} hosts); the secret caches hold the run's few grants from the start` +
        (r.tail === undefined ? '' : `; RSS over the last ${FLAT_TAIL_S / 60} min: ${r.tail.growthMiB >= 0 ? '+' : ''}${fixed(r.tail.growthMiB, 1)} MiB`),
    `upstream (warm-up included): ${r.upstream.viaKeyway} requests on the bearer grant (${r.upstream.withoutCredentialViaKeyway} without the credential), ${r.upstream.oauth.total} on the oauth2 grant (${r.upstream.oauth.refusedExpired + r.upstream.oauth.refusedUnknown + r.upstream.oauth.refusedMissing} refused)`,
    `warm-up: ${fixed(r.warmup.seconds, 1)} s, ${r.warmup.ok} ok, p99 ${fixed(r.warmup.p99Ms, 2)} ms, errors ${errorText(r.warmup.errors)}`,
    `keyway: RSS ${fixed(r.keyway.rssAfterStartMiB, 1)} MiB after start; runs as ${r.keyway.runtime}`,
    '',
    table(
      ['target', 'result', 'figure'],
      r.targets.map((t) => [t.name, t.pass ? 'met' : 'MISSED', t.detail]),
    ),
    '',
    r.pass
      ? 'soak: every target met'
      : `soak: MISSED ${r.targets
          .filter((t) => !t.pass)
          .map((t) => t.name)
          .join(', ')}`,
  ];
  return lines.join('\n');
}
