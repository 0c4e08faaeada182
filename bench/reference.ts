// The one table a reader compares proxies by: keyway, squid (ssl-bump) and the bare Node forwarder
// (the floor of keyway's stack) side by side, scenario by scenario, from this run's medians, with
// direct where a figure is a ratio to it and the machine's load at the start and the end. Printed
// at the end of `npm run bench` and written beside latest.json as latest.md, which docs/perf/
// keeps a copy of for the README to link.
import type { PerRoute, RouteName } from './clients.ts';
import type { LatencyFigures, NewHostFigures, ThroughputFigures } from './report.ts';
import type { RssReadings } from './report-targets.ts';
import type { ScalingFigures } from './scaling.ts';
import { fixed } from './stats.ts';

export interface ReferenceInput {
  s1: LatencyFigures;
  s2: LatencyFigures;
  s3: ThroughputFigures;
  s4: ThroughputFigures;
  s5: NewHostFigures;
  rssAfterS2: RssReadings;
  rssAfterS5: RssReadings;
  s11: ScalingFigures | undefined;
}

const COLUMNS: readonly RouteName[] = ['keyway', 'squid', 'floor', 'direct'];

export interface ReferenceRow {
  scenario: string;
  figure: string;
  values: Partial<Record<RouteName, number>>;
  digits: number;
}

export function referenceRows(r: ReferenceInput): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const each = <T>(per: PerRoute<T>, pick: (v: T, route: RouteName) => number | undefined, names: readonly RouteName[] = COLUMNS) => {
    const out: Partial<Record<RouteName, number>> = {};
    for (const name of names) {
      const v = per[name];
      if (v !== undefined) {
        const n = pick(v, name);
        if (n !== undefined && Number.isFinite(n)) out[name] = n;
      }
    }
    return out;
  };
  const proxies = COLUMNS.filter((c) => c !== 'direct');
  const latency = (scenario: string, f: LatencyFigures, withRate: boolean) => {
    if (withRate) rows.push({ scenario, figure: 'req/s', values: each(f.routes, (v) => v.rps), digits: 0 });
    if (withRate) rows.push({ scenario, figure: 'CPU ms per request', values: each(f.routes, (v) => v.cpuMsPerRequest, proxies), digits: 3 });
    rows.push({ scenario, figure: 'added p50 ms', values: each(f.routes, (v) => v.p50 - f.direct.p50, proxies), digits: 2 });
    rows.push({ scenario, figure: 'added p99 ms', values: each(f.routes, (v) => v.p99 - f.direct.p99, proxies), digits: 2 });
  };
  latency('s1 sequential GETs', r.s1, false);
  latency('s2 64 connections, small GETs', r.s2, true);
  rows.push({
    scenario: 's2',
    figure: 'RSS MiB after',
    values: { keyway: r.rssAfterS2.keyway, squid: r.rssAfterS2.squid, floor: r.rssAfterS2.floor },
    digits: 1,
  });
  rows.push({ scenario: 's3 1 MiB downloads', figure: 'MiB/s', values: each(r.s3.routes, (v) => v), digits: 1 });
  rows.push({ scenario: 's4 1 MiB uploads', figure: 'MiB/s', values: each(r.s4.routes, (v) => v), digits: 1 });
  rows.push({
    scenario: 's5 new hosts',
    figure: 'added ms per host',
    values: each(r.s5.routes, (v) => v.msPerHost - r.s5.direct.msPerHost, proxies),
    digits: 2,
  });
  rows.push({
    scenario: 's5',
    figure: 'RSS MiB after',
    values: { keyway: r.rssAfterS5.keyway, squid: r.rssAfterS5.squid, floor: r.rssAfterS5.floor },
    digits: 1,
  });
  if (r.s11) {
    const at = (proxy: string, n: number) => r.s11?.rows.find((x) => x.proxy === proxy && x.workers === n);
    const n = r.s11.workers;
    rows.push({
      scenario: `s11 ${n} workers, s2's load`,
      figure: 'req/s',
      values: { keyway: at('keyway', n)?.rps, squid: at('squid', n)?.rps, direct: at('direct', 0)?.rps },
      digits: 0,
    });
    rows.push({
      scenario: `s11`,
      figure: 'CPU ms per request',
      values: { keyway: at('keyway', n)?.cpuMsPerRequest, squid: at('squid', n)?.cpuMsPerRequest },
      digits: 3,
    });
    rows.push({ scenario: `s11`, figure: `slope 1 -> ${n} workers`, values: { keyway: r.s11.keywaySlope, squid: r.s11.squidSlope }, digits: 2 });
  }
  return rows;
}

/** The rows as a Markdown table (also what the terminal shows: it reads well as plain text). */
export function referenceMarkdown(rows: readonly ReferenceRow[], header: string): string {
  const cell = (row: ReferenceRow, name: RouteName) => {
    const v = row.values[name];
    return v === undefined || !Number.isFinite(v) ? '' : fixed(v, row.digits);
  };
  const lines = [
    header,
    '',
    `| scenario | figure | ${COLUMNS.join(' | ')} |`,
    `|---|---|${COLUMNS.map(() => '---:').join('|')}|`,
    ...rows.map((row) => `| ${row.scenario} | ${row.figure} | ${COLUMNS.map((c) => cell(row, c)).join(' | ')} |`),
  ];
  return lines.join('\n');
}
