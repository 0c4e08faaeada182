// `npm run bench -- --profile`: where keyway's CPU goes in each scenario, and what holds its memory
// after s2 and s5, beside the bare forwarder (bench/bare-forwarder.mjs, the floor of keyway's stack).
// Both children run with --inspect=127.0.0.1:0; this drives their V8 profilers over the inspector
// protocol, started and stopped around each scenario, so each profile is that scenario's alone.
// Profiles are written as .cpuprofile (scripts/flamegraph.mjs and DevTools read them) and summed
// by kind (keyway's own files by folder, npm packages, Node's modules, GC, native writes).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type HeapSummary, summariseHeap, takeHeapSnapshot } from './heap-summary.ts';
import type { InspectorClient } from './inspector.ts';
import { type CpuProfile, type ProfileReport, summariseCpuProfile } from './profile.ts';
import type { SourceOf } from './profile-map.ts';

export interface ProfiledTarget {
  name: string;
  client: InspectorClient;
  /** Requests it has forwarded so far (the upstream's count), to turn busy time into µs per request. */
  requests(): number;
}

export interface ScenarioCpu {
  report: ProfileReport;
  requests: number;
}

export interface MemoryFigures {
  usage: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  spaces: Array<{ name: string; used: number; size: number }>;
  heap: HeapSummary;
}

const MEMORY_EXPRESSION = `(() => {
  const v8 = process.getBuiltinModule('node:v8');
  const spaces = v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, used: s.space_used_size, size: s.space_size }));
  return { usage: process.memoryUsage(), spaces };
})()`;

export class ScenarioProfiler {
  readonly cpu = new Map<string, Map<string, ScenarioCpu>>();
  readonly memory = new Map<string, Map<string, MemoryFigures>>();
  readonly #targets: readonly ProfiledTarget[];
  readonly #dir: string;
  readonly #sourceOf: SourceOf | undefined;
  #startRequests = new Map<string, number>();

  constructor(targets: readonly ProfiledTarget[], dir: string, sourceOf: SourceOf | undefined) {
    this.#targets = targets;
    this.#dir = dir;
    this.#sourceOf = sourceOf;
  }

  get names(): string[] {
    return this.#targets.map((t) => t.name);
  }

  async start(): Promise<void> {
    for (const t of this.#targets) {
      await t.client.send('Profiler.enable');
      await t.client.send('Profiler.setSamplingInterval', { interval: 500 });
      this.#startRequests.set(t.name, t.requests());
    }
    await Promise.all(this.#targets.map((t) => t.client.send('Profiler.start')));
  }

  async stop(scenario: string): Promise<void> {
    const stopped = await Promise.all(this.#targets.map((t) => t.client.send<{ profile: CpuProfile }>('Profiler.stop')));
    const byTarget = new Map<string, ScenarioCpu>();
    this.#targets.forEach((t, i) => {
      const profile = (stopped[i] as { profile: CpuProfile }).profile;
      const file = join(this.#dir, `${scenario}-${t.name}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      byTarget.set(t.name, { report: summariseCpuProfile(profile, file, 15, this.#sourceOf), requests: t.requests() - (this.#startRequests.get(t.name) ?? 0) });
    });
    for (const t of this.#targets) await t.client.send('Profiler.disable');
    this.cpu.set(scenario, byTarget);
  }

  /** Reads each target's memory, then takes a heap snapshot (read RSS for the run's figures first: a snapshot costs memory). */
  async readMemory(when: string): Promise<void> {
    const byTarget = new Map<string, MemoryFigures>();
    for (const t of this.#targets) {
      const figures = await t.client.evaluate<Omit<MemoryFigures, 'heap'>>(MEMORY_EXPRESSION);
      byTarget.set(t.name, { ...figures, heap: summariseHeap(await takeHeapSnapshot(t.client), 20) });
    }
    this.memory.set(when, byTarget);
  }

  /** The figures behind the report, written as profile.json beside profile.md. */
  toJSON(): unknown {
    const plain = <T>(m: Map<string, Map<string, T>>) => Object.fromEntries([...m].map(([k, v]) => [k, Object.fromEntries(v)]));
    return { cpu: plain(this.cpu), memory: plain(this.memory) };
  }

  close(): void {
    for (const t of this.#targets) t.client.close();
  }
}
