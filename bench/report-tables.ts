// The printed tables of s1-s5: one row per route per round, the medians, then the comparisons:
// each proxy against direct, and keyway against each peer of the same run (squid, the floor).
import type { PerRoute, ProxyName } from './clients.ts';
import { PEERS, addedP50, addedPerHost, routesOf, type LatencyFigures, type NewHostFigures, type ThroughputFigures } from './report.ts';
import type { LatencyResult, ThroughputResult } from './scenarios.ts';
import { fixed, ratio, signed, table } from './stats.ts';

const PROXIES: readonly ProxyName[] = ['keyway', ...PEERS];

/** What each proxy's name means in the ratio lines. */
export const PEER_NOTES: Record<ProxyName, string> = {
  keyway: 'keyway',
  squid: 'squid ssl-bump with request_header_add',
  floor: 'bare forwarder: CONNECT, TLS both ways, undici, one header',
};

/** Whether keyway ran (not under `npm run bench:floor`, which compares the floor with direct alone). */
const hasKeyway = <T>(routes: PerRoute<T>) => routesOf(routes).includes('keyway');

export function latencyTable(rounds: ReadonlyArray<PerRoute<LatencyResult>>, f: LatencyFigures): string {
  const names = routesOf(f.routes);
  const withCpu = names.some((n) => Number.isFinite(f.routes[n]?.cpuMsPerRequest));
  const cpu = (ms: number | undefined, requests: number) => (ms === undefined ? '' : fixed(ms / requests, 3));
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const route of routesOf(round)) {
      const r = round[route] as LatencyResult;
      const row = [`${i + 1}`, route, String(r.requests), fixed(r.seconds), fixed(r.rps, 0), fixed(r.latencyMs.p50, 3), fixed(r.latencyMs.p99, 3)];
      rows.push(withCpu ? [...row, cpu(r.cpuMs, r.requests)] : row);
    }
  });
  for (const route of names) {
    const m = f.routes[route];
    if (!m) continue;
    const row = ['median', route, '', '', fixed(m.rps, 0), fixed(m.p50, 3), fixed(m.p99, 3)];
    rows.push(withCpu ? [...row, Number.isFinite(m.cpuMsPerRequest) ? fixed(m.cpuMsPerRequest, 3) : ''] : row);
  }
  const headers = ['round', 'route', 'requests', 's', 'req/s', 'p50 ms', 'p99 ms', ...(withCpu ? ['CPU ms/req'] : [])];
  const lines = [table(headers, rows)];
  for (const p of PROXIES) {
    const m = f.routes[p];
    if (!m) continue;
    lines.push(
      `${p} ÷ direct: ${ratio(m.rps / f.direct.rps)} req/s; adds ${signed(m.p50 - f.direct.p50, 3)} ms at p50, ${signed(m.p99 - f.direct.p99, 3)} ms at p99`,
    );
  }
  for (const p of PEERS) {
    const m = f.routes[p];
    if (!m || !hasKeyway(f.routes)) continue;
    const cpuLine = withCpu ? `; CPU per request ${ratio(f.keyway.cpuMsPerRequest / m.cpuMsPerRequest)}` : '';
    lines.push(
      `keyway ÷ ${p}: ${ratio(f.keyway.rps / m.rps)} req/s; added p50 keyway ${signed(f.addedP50Ms, 3)} ms vs ${p} ${signed(addedP50(f, p), 3)} ms${cpuLine}`,
    );
  }
  return lines.join('\n');
}

export function throughputTable(rounds: ReadonlyArray<PerRoute<ThroughputResult>>, f: ThroughputFigures): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const route of routesOf(round)) {
      const r = round[route] as ThroughputResult;
      rows.push([`${i + 1}`, route, String(r.transfers), fixed(r.seconds), fixed(r.mibPerSecond, 1)]);
    }
  });
  for (const route of routesOf(f.routes)) rows.push(['median', route, '', '', fixed(f.routes[route] ?? Number.NaN, 1)]);
  const lines = [table(['round', 'route', 'MiB moved', 's', 'MiB/s'], rows)];
  const ratios = PROXIES.filter((p) => f.routes[p] !== undefined).map((p) => `${p} ÷ direct: ${ratio((f.routes[p] ?? Number.NaN) / f.directMiBps)}`);
  lines.push(ratios.join('; '));
  for (const p of PEERS) {
    const peer = f.routes[p];
    if (peer !== undefined && hasKeyway(f.routes)) lines.push(`keyway ÷ ${p}: ${ratio(f.keywayMiBps / peer)}`);
  }
  return lines.join('\n');
}

export function newHostTable(f: NewHostFigures): string {
  const rows = routesOf(f.routes).map((route) => {
    const r = f.routes[route];
    return r ? [route, String(r.hosts), fixed(r.msPerHost), fixed(r.latencyMs.p50), fixed(r.latencyMs.p99)] : [];
  });
  const lines = [table(['route', 'hosts', 'ms/host (mean)', 'p50 ms', 'p99 ms'], rows)];
  const added = PROXIES.filter((p) => f.routes[p] !== undefined).map((p) => `${p} ${signed(addedPerHost(f, p))} ms`);
  lines.push(`added per new host over direct (mean): ${added.join(', ')}${hasKeyway(f.routes) ? `; keyway at p50: ${signed(f.addedP50Ms)} ms` : ''}`);
  return lines.join('\n');
}
