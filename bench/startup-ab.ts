// An A/B of two keyway builds' start-up (issue 62): each build gets a bench home of its own with a
// `keyway start` of its own build running for it (bench/startup-home.ts), and its `keyway run --
// true` and `keyway run --contain -- true` are timed in turns (A B, B A, ...) after 2 warm-up
// rounds, so that the drift of a shared machine's load falls on both alike. Prints medians of wall
// and CPU per case and build, and B - A. A bench, never a test: nothing fails on a figure.
//
//   node bench/startup-ab.ts --a=/path/to/checkout-a --b=/path/to/checkout-b [--runs=20] [--cases=contain,run]
//
// Each path is a checkout with a built dist/ (npm run build) and its node_modules.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median } from './stats.ts';
import { type BenchHome, makeBenchHome, startBenchKeyway } from './startup-home.ts';
import { type Sample, timed } from './startup-time.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const checkouts = { A: arg('a'), B: arg('b') };
if (!checkouts.A || !checkouts.B) {
  console.error('usage: node bench/startup-ab.ts --a=CHECKOUT --b=CHECKOUT [--runs=20] [--cases=contain,run]');
  process.exit(2);
}
const runs = Math.min(100, Math.max(1, Number(arg('runs') ?? 20)));
const WARM_UP = 2;
const CASES = { run: ['run', '--', 'true'], contain: ['run', '--contain', '--', 'true'] } as const;
const caseNames = (arg('cases') ?? 'contain,run').split(',').filter((c): c is keyof typeof CASES => Object.hasOwn(CASES, c));

interface Build {
  name: 'A' | 'B';
  cli: string;
  home: BenchHome;
  keyway: { pid: number; stop(): Promise<void> };
  samples: Map<string, Sample[]>;
}

const project = mkdtempSync(join(tmpdir(), 'keyway-bench-startup-ab-'));
writeFileSync(join(project, 'README'), 'a project\n');
const builds: Build[] = [];
const load0 = loadavg();
try {
  for (const name of ['A', 'B'] as const) {
    const cli = join(resolve(checkouts[name]!), 'dist', 'cli', 'main.js');
    const home = makeBenchHome(cli);
    const keyway = await startBenchKeyway(cli, home.home, home.env);
    builds.push({ name, cli, home, keyway, samples: new Map(caseNames.map((c) => [c, []])) });
  }
  for (let round = 0; round < WARM_UP + runs; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const c of caseNames) {
      for (const b of order) {
        const sample = await timed([process.execPath, b.cli, ...CASES[c]], { ...b.home.env, KEYWAY_HOME: b.home.home }, project, b.keyway.pid);
        if (round >= WARM_UP) b.samples.get(c)!.push(sample);
      }
    }
    if (round >= WARM_UP) process.stdout.write(`round ${round - WARM_UP + 1}/${runs}\r`);
  }
  process.stdout.write('\n');
  const ms = (n: number) => `${Math.round(n)} ms`;
  for (const c of caseNames) {
    const [a, b] = builds.map((x) => x.samples.get(c)!) as [Sample[], Sample[]];
    const fig = (s: Sample[]) => ({ wall: median(s.map((x) => x.wallMs)), cpu: median(s.map((x) => x.cpuMs)), keyway: median(s.map((x) => x.keywayCpuMs)) });
    const [fa, fb] = [fig(a), fig(b)];
    console.log(
      `${c.padEnd(8)} A ${ms(fa.wall)} wall, ${ms(fa.cpu)} CPU (+${ms(fa.keyway)} keyway) | B ${ms(fb.wall)} wall, ${ms(fb.cpu)} CPU (+${ms(fb.keyway)} keyway) | B-A ${ms(fb.wall - fa.wall)} wall, ${ms(fb.cpu - fa.cpu)} CPU`,
    );
  }
  console.log(
    `${runs} runs each; load average ${load0.map((n) => n.toFixed(2)).join(' ')} at the start, ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} at the end`,
  );
} finally {
  for (const b of builds) {
    await b.keyway.stop();
    rmSync(b.home.home, { recursive: true, force: true });
    rmSync(b.home.userHome, { recursive: true, force: true });
  }
  rmSync(project, { recursive: true, force: true });
}
