// The markdown report of `npm run bench -- --profile` (bench/scenario-profiler.ts): per scenario,
// keyway's busy CPU per request beside the bare forwarder's, by kind and by folder of src/, and what
// holds each one's memory after s2 and s5.
import type { MemoryFigures, ScenarioCpu, ScenarioProfiler } from './scenario-profiler.ts';

const md = (headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string =>
  [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const kib = (bytes: number) => (bytes / 1024).toFixed(0);
/** µs of busy CPU per forwarded request. */
const perRequest = (ms: number, requests: number) => (requests > 0 ? ((1000 * ms) / requests).toFixed(1) : '-');
const pct = (x: number) => `${x.toFixed(1)}%`;

function cpuSection(scenario: string, byTarget: Map<string, ScenarioCpu>): string {
  const k = byTarget.get('keyway');
  const f = byTarget.get('floor');
  const out: string[] = [`### ${scenario}`, ''];
  const head = [...byTarget].map(
    ([name, c]) =>
      `${name}: ${c.requests} requests, busy ${c.report.busyMs.toFixed(0)} ms of ${c.report.totalMs.toFixed(0)} ms sampled, ${perRequest(c.report.busyMs, c.requests)} µs busy per request`,
  );
  out.push(...head.map((h) => `- ${h}`), '');
  if (k) {
    const kinds = new Set([...k.report.byKind.map((r) => r.name), ...(f?.report.byKind.map((r) => r.name) ?? [])]);
    const find = (c: ScenarioCpu | undefined, name: string) => c?.report.byKind.find((r) => r.name === name);
    out.push(
      md(
        ['where the busy time went', 'keyway µs/req', 'keyway %', ...(f ? ['floor µs/req', 'floor %', 'keyway − floor µs/req'] : [])],
        [...kinds].map((name) => {
          const a = find(k, name);
          const b = find(f, name);
          const ka = a ? (1000 * a.ms) / Math.max(1, k.requests) : 0;
          const fb = b && f ? (1000 * b.ms) / Math.max(1, f.requests) : 0;
          return [name, ka.toFixed(1), pct(a?.percentOfBusy ?? 0), ...(f ? [fb.toFixed(1), pct(b?.percentOfBusy ?? 0), (ka - fb).toFixed(1)] : [])];
        }),
      ),
      '',
      md(
        ['keyway by folder / package / module (self time)', 'µs/req', '% of busy'],
        k.report.byFolder.map((r) => [r.name, perRequest(r.ms, k.requests), pct(r.percentOfBusy)]),
      ),
      '',
      md(
        ['keyway by function (top 15)', 'µs/req', '% of busy'],
        k.report.byFunction.map((r) => [`\`${r.name}\``, perRequest(r.ms, k.requests), pct(r.percentOfBusy)]),
      ),
      '',
    );
  }
  if (f) {
    out.push(
      md(
        ['floor by module / package', 'µs/req', '% of busy'],
        f.report.byFolder.slice(0, 10).map((r) => [r.name, perRequest(r.ms, f.requests), pct(r.percentOfBusy)]),
      ),
      '',
    );
  }
  return out.join('\n');
}

function memorySection(when: string, byTarget: Map<string, MemoryFigures>): string {
  const names = [...byTarget.keys()];
  const figures = [...byTarget.values()];
  const row = (label: string, value: (m: MemoryFigures) => string) => [label, ...figures.map(value)];
  const spaceNames = [...new Set(figures.flatMap((m) => m.spaces.filter((s) => s.size > 0).map((s) => s.name)))];
  const out = [
    `### memory ${when} (MiB; read before the heap snapshot, which forces a full GC)`,
    '',
    md(
      ['', ...names],
      [
        row('RSS', (m) => mib(m.usage.rss)),
        row('V8 heap total (committed)', (m) => mib(m.usage.heapTotal)),
        row('V8 heap used', (m) => mib(m.usage.heapUsed)),
        row('external (off-heap, incl. array buffers)', (m) => mib(m.usage.external)),
        row('array buffers', (m) => mib(m.usage.arrayBuffers)),
        ...spaceNames.map((s) =>
          row(`space ${s} used / size`, (m) => {
            const space = m.spaces.find((x) => x.name === s);
            return space ? `${mib(space.used)} / ${mib(space.size)}` : '-';
          }),
        ),
        row('heap snapshot, live self sizes', (m) => mib(m.heap.totalBytes)),
      ],
    ),
    '',
    md(
      ['instances after a full GC', ...names],
      (figures[0]?.heap.watched ?? []).map((w, i) => [w.type, ...figures.map((m) => String(m.heap.watched[i]?.count ?? 0))]),
    ),
    '',
  ];
  for (const [name, m] of byTarget) {
    out.push(
      md(
        [`${name}: heap by type (top ${m.heap.top.length} by self size)`, 'count', 'self KiB'],
        m.heap.top.map((r) => [r.type, String(r.count), kib(r.selfBytes)]),
      ),
      '',
    );
    if (m.heap.lruCaches.length > 0) {
      out.push(`${name}'s lru-caches (entries held / slots): ${m.heap.lruCaches.map((c) => `${c.entries}/${c.slots}`).join(', ')}`, '');
    }
  }
  return out.join('\n');
}

export function profileMarkdown(profiler: ScenarioProfiler, header: readonly string[]): string {
  return [
    "# Where keyway's CPU and memory go, per scenario (npm run bench -- --profile)",
    '',
    ...header,
    '',
    '## CPU',
    '',
    "Self time from V8's sampling profiler (0.5 ms), started and stopped around each scenario in keyway and in the bare forwarder; µs/req is busy time over the requests that reached the upstream through it in that scenario. Profiling slows both, so read shares and differences, not absolute speed.",
    '',
    ...[...profiler.cpu].map(([scenario, byTarget]) => cpuSection(scenario, byTarget)),
    '## Memory',
    '',
    ...[...profiler.memory].map(([when, byTarget]) => memorySection(when, byTarget)),
  ].join('\n');
}

/** A few lines for the end of the run's output. */
export function profileSummary(profiler: ScenarioProfiler): string {
  const lines: string[] = [];
  for (const [scenario, byTarget] of profiler.cpu) {
    const k = byTarget.get('keyway');
    const f = byTarget.get('floor');
    if (!k) continue;
    const kind = (c: ScenarioCpu | undefined, name: string) => c?.report.byKind.find((r) => r.name.startsWith(name));
    const us = (c: ScenarioCpu | undefined, name: string) => {
      const r = kind(c, name);
      return c && r ? perRequest(r.ms, c.requests) : '-';
    };
    lines.push(
      `${scenario}: keyway ${perRequest(k.report.busyMs, k.requests)} µs busy/req (own files ${us(k, "keyway's")}, npm ${us(k, 'npm')}, node ${us(k, "Node's")}, GC ${us(k, 'garbage')}, writes ${us(k, 'native writes')})` +
        (f
          ? `; floor ${perRequest(f.report.busyMs, f.requests)} (npm ${us(f, 'npm')}, node ${us(f, "Node's")}, GC ${us(f, 'garbage')}, writes ${us(f, 'native writes')})`
          : '') +
        `; keyway's top folders: ${k.report.byFolder
          .filter((r) => r.name.startsWith('keyway:'))
          .slice(0, 4)
          .map((r) => `${r.name.slice(7)} ${perRequest(r.ms, k.requests)}`)
          .join(', ')}`,
    );
  }
  for (const [when, byTarget] of profiler.memory) {
    lines.push(
      `memory ${when}: ${[...byTarget]
        .map(
          ([name, m]) => `${name} RSS ${mib(m.usage.rss)} MiB, heap used ${mib(m.usage.heapUsed)}/${mib(m.usage.heapTotal)}, external ${mib(m.usage.external)}`,
        )
        .join('; ')}`,
    );
  }
  return lines.join('\n');
}
