// `npm run bench:startup`: what keyway adds to a command's start (issue 62: an agent that wraps each
// tool call pays it every time). Runs, interleaved round by round so that the machine's drift hits all
// alike, the built CLI (dist/cli/main.js, what the `keyway` bin runs) on this Node:
//   bare `true`; `keyway run -- true` and `keyway run --contain -- true`, each with a keyway running
//   for the home (`keyway start`) and with none running (another copy of the same home); and
//   `keyway --version`. Where the single executable is built (release/keyway-linux-x64, `npm run
//   release`, or --bin=PATH), the same commands run by it too (issue 91: no slower than dist/).
// Each run is timed by bash's `time` (wall, and the CPU of every process it waited for); the running
// keyway's own CPU is read from /proc around each run, so work moved into it is counted too.
// Prints a table and writes the figures into docs/perf/startup.md (between its bench markers). A
// bench, never a test: nothing fails on a figure. Loopback only; bounded in runs and time.
//
//   node bench/startup.ts [--runs=20] [--no-write]
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Case, type CaseFigures, reportMarkdown, reportTable, summariseCase, writeReport } from './startup-report.ts';
import { makeBenchHome, startBenchKeyway } from './startup-home.ts';
import { type Sample, timed } from './startup-time.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const runs = Math.min(100, Math.max(1, Number(arg('runs') ?? 20)));
const write = !process.argv.includes('--no-write');
const WARM_UP = 2;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const node = process.execPath;
const bin = resolve(arg('bin') ?? join(root, 'release', `keyway-linux-${process.arch}`));
const withBin = existsSync(bin);

const home = makeBenchHome(cli);
// The same home with nothing running for it, copied before the keyway starts.
const alone = mkdtempSync(join(tmpdir(), 'keyway-bench-startup-alone-'));
cpSync(home.home, alone, { recursive: true });
// The folder the commands run in: a project of its own (--contain writes only there), keyway's homes outside it.
const project = mkdtempSync(join(tmpdir(), 'keyway-bench-startup-project-'));
writeFileSync(join(project, 'README'), 'a project\n');
const keyway = await startBenchKeyway(cli, home.home, home.env);
const envFor = (keywayHome: string) => ({ ...home.env, KEYWAY_HOME: keywayHome });

const cases: Case[] = [
  // The program, not bash's builtin of that name: a process of its own, as under keyway run.
  { name: 'true', command: [onPath('true')], env: envFor(alone), running: false },
  { name: 'keyway run -- true (keyway running)', command: [node, cli, 'run', '--', 'true'], env: envFor(home.home), running: true, target: { addedMs: 150 } },
  { name: 'keyway run -- true (none running)', command: [node, cli, 'run', '--', 'true'], env: envFor(alone), running: false },
  {
    name: 'keyway run --contain -- true (keyway running)',
    command: [node, cli, 'run', '--contain', '--', 'true'],
    env: envFor(home.home),
    running: true,
    target: { addedMs: 400 },
  },
  { name: 'keyway run --contain -- true (none running)', command: [node, cli, 'run', '--contain', '--', 'true'], env: envFor(alone), running: false },
  { name: 'keyway --version', command: [node, cli, '--version'], env: envFor(alone), running: false },
  ...(withBin
    ? [
        { name: 'executable: keyway --version', command: [bin, '--version'], env: envFor(alone), running: false },
        { name: 'executable: keyway run -- true (keyway running)', command: [bin, 'run', '--', 'true'], env: envFor(home.home), running: true },
        { name: 'executable: keyway run -- true (none running)', command: [bin, 'run', '--', 'true'], env: envFor(alone), running: false },
        {
          name: 'executable: keyway run --contain -- true (keyway running)',
          command: [bin, 'run', '--contain', '--', 'true'],
          env: envFor(home.home),
          running: true,
        },
      ]
    : []),
];
if (!withBin) console.log(`no single executable at ${bin} (npm run release -- --only=linux-${process.arch}): dist/ only`);

const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
const loadAtStart = loadAverage();
try {
  for (let round = 0; round < WARM_UP + runs; round++) {
    // Each round starts one case later, so no case always runs first (after the bench's own pause).
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(round + i) % cases.length]!;
      const sample = await timed(c.command, c.env, project, c.running ? keyway.pid : undefined);
      if (round >= WARM_UP) samples.get(c)!.push(sample);
    }
    if (round >= WARM_UP) process.stdout.write(`round ${round - WARM_UP + 1}/${runs}\r`);
  }
  process.stdout.write('\n');
  const bare = summariseCase(cases[0]!, samples.get(cases[0]!)!, undefined);
  const figures: CaseFigures[] = [bare, ...cases.slice(1).map((c) => summariseCase(c, samples.get(c)!, bare))];
  console.log(reportTable(figures));
  const markdown = reportMarkdown(figures, { runs, warmUp: WARM_UP, loadAtStart, loadAtEnd: loadAverage(), root });
  if (write) {
    const file = writeReport(root, markdown);
    console.log(`\nwritten to ${file}`);
  }
} finally {
  await keyway.stop();
  for (const dir of [home.home, alone, project, home.userHome]) rmSync(dir, { recursive: true, force: true });
}

/** Where PATH finds `program`. */
function onPath(program: string): string {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    const path = join(dir, program);
    if (dir !== '' && existsSync(path)) return path;
  }
  throw new Error(`${program} is not on PATH`);
}

function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}
