// bench/startup.ts's figures: medians and p90s per case, what keyway adds to the bare command, the
// targets of issue 62, as a table for the terminal and a section of docs/perf/startup.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { median, percentile, table } from './stats.ts';

export interface Case {
  name: string;
  command: readonly string[];
  env: Record<string, string>;
  /** A keyway runs for the home the command names (its CPU is read around each run). */
  running: boolean;
  /** Issue 62's target: at most this many ms added to the bare command's median. */
  target?: { addedMs: number };
}

export interface CaseFigures {
  name: string;
  runs: number;
  wall: { p50: number; p90: number };
  /** CPU of the command and every process it waited for, median. */
  cpuMs: number;
  /** CPU the running keyway spent per run (mean: /proc counts in clock ticks), or undefined where none runs. */
  keywayCpuMs: number | undefined;
  /** Median wall time over the bare command's (undefined for the bare command itself). */
  addedMs: number | undefined;
  target: { addedMs: number; met: boolean } | undefined;
}

export function summariseCase(
  c: Case,
  samples: ReadonlyArray<{ wallMs: number; cpuMs: number; keywayCpuMs: number }>,
  bare: CaseFigures | undefined,
): CaseFigures {
  const walls = samples.map((s) => s.wallMs).sort((a, b) => a - b);
  const p50 = median(walls);
  const addedMs = bare === undefined ? undefined : p50 - bare.wall.p50;
  return {
    name: c.name,
    runs: samples.length,
    wall: { p50, p90: percentile(walls, 90) },
    cpuMs: median(samples.map((s) => s.cpuMs)),
    keywayCpuMs: c.running ? samples.reduce((sum, s) => sum + s.keywayCpuMs, 0) / samples.length : undefined,
    addedMs,
    target: c.target === undefined || addedMs === undefined ? undefined : { addedMs: c.target.addedMs, met: addedMs <= c.target.addedMs },
  };
}

const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : `${Math.round(n)} ms`);
const HEADERS = ['command', 'median', 'p90', 'added', 'CPU (median)', 'running keyway CPU/run', 'target (added)'];

function rows(figures: readonly CaseFigures[]): string[][] {
  return figures.map((f) => [
    f.name,
    ms(f.wall.p50),
    ms(f.wall.p90),
    f.addedMs === undefined ? '-' : `+${Math.round(f.addedMs)} ms`,
    ms(f.cpuMs),
    f.keywayCpuMs === undefined ? '-' : ms(f.keywayCpuMs),
    f.target === undefined ? '-' : `≤ ${f.target.addedMs} ms: ${f.target.met ? 'met' : 'NOT met'}`,
  ]);
}

export function reportTable(figures: readonly CaseFigures[]): string {
  return table(HEADERS, rows(figures));
}

export interface ReportContext {
  runs: number;
  warmUp: number;
  loadAtStart: string;
  loadAtEnd: string;
  root: string;
}

export function reportMarkdown(figures: readonly CaseFigures[], ctx: ReportContext): string {
  const cpu = cpus();
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [
    `Measured ${new Date().toISOString().slice(0, 10)} at commit ${commitOf(ctx.root)}, Node ${process.version}, on ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'},`,
    `${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; load average ${ctx.loadAtStart} at the start, ${ctx.loadAtEnd} at the end.`,
    `${ctx.runs} runs of each, interleaved round by round after ${ctx.warmUp} warm-up rounds; "added" is the median over bare \`true\`'s.`,
    '',
    line(HEADERS),
    line(HEADERS.map(() => '---')),
    ...rows(figures).map(line),
  ].join('\n');
}

const BEGIN = '<!-- bench:startup figures: written by `npm run bench:startup` -->';
const END = '<!-- /bench:startup figures -->';

/** Replaces the figures between the markers in docs/perf/startup.md (the prose around them stays). */
export function writeReport(root: string, markdown: string): string {
  const file = join(root, 'docs', 'perf', 'startup.md');
  const block = `${BEGIN}\n${markdown}\n${END}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Start-up: what keyway adds to a command\n\n${BEGIN}\n${END}\n`;
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  writeFileSync(file, from === -1 || to === -1 ? `${text.trimEnd()}\n\n${block}\n` : `${text.slice(0, from)}${block}${text.slice(to + END.length)}`);
  return file;
}

/** The commit this checkout is at, marked when src/ differs from it. */
function commitOf(root: string): string {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git(['rev-parse', '--short=12', 'HEAD']);
    return git(['status', '--porcelain', '--', 'src']) === '' ? commit : `${commit} (with changes to src/)`;
  } catch {
    return '(not a git checkout)';
  }
}
