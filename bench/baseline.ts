// The baseline: the last landed build's figures, kept in bench/baseline.json, and that build itself
// re-measured in the same run, interleaved with this one (A, B, B, A, ...), on s2 (small GETs), s8
// (the same load signed with SigV4) and s10 (MCP tools/call): so that a cost that creeps in a few
// percent a change is seen when it lands, not three stops later. Each stage of a change can measure
// as noise on its own; the sum against a fixed build cannot hide.
//
// The baseline build is a git worktree of baseline.json's `ref` in a temp folder, sharing this
// checkout's node_modules, built with its own scripts/build.mjs. `npm run bench -- --baseline=REF`
// measures against another commit; `--no-baseline` leaves it out.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoredPeerFigures } from './baseline-figures.ts';
import type { Route } from './clients.ts';
import { rpcLoad } from './mcp.ts';
import { AWS_HOST, type Context, type LatencyResult, MAIN_HOST, type Plan, s2Parallel } from './scenarios.ts';
import { fixed, median, table } from './stats.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const BASELINE_FILE = fileURLToPath(new URL('./baseline.json', import.meta.url));

export const BASELINE_SCENARIOS = ['s2', 's8', 's10'] as const;
export type BaselineScenario = (typeof BASELINE_SCENARIOS)[number];

export interface StoredFigure {
  rps: number;
  cpuUsPerRequest: number;
}

/** bench/baseline.json: which build, when and where its figures were taken, and the figures. */
export interface BaselineFile {
  ref: string;
  label: string;
  measured: string;
  machine: string;
  figures: Record<BaselineScenario, StoredFigure>;
  /** The figures judged against squid or after a scenario, compared with a full run's (bench/baseline-figures.ts). */
  peerFigures?: StoredPeerFigures;
}

export function readBaseline(file = BASELINE_FILE): BaselineFile | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as BaselineFile;
}

export interface BaselineBuild {
  /** Its dist/cli/main.js. */
  cli: string;
  commit: string;
  remove(): void;
}

/** A built worktree of `ref`, or the reason there is none (no git, no such commit, a build that fails). */
export function checkoutBaseline(ref: string): BaselineBuild | { why: string } {
  let commit: string;
  try {
    commit = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return { why: `${ref} is not a commit of this checkout (a shallow clone?)` };
  }
  const dir = join(mkdtempSync(join(tmpdir(), 'keyway-bench-baseline-')), 'tree');
  const remove = () => {
    spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' });
    rmSync(join(dir, '..'), { recursive: true, force: true });
  };
  const added = spawnSync('git', ['worktree', 'add', '--detach', dir, commit], { cwd: ROOT, stdio: 'ignore' });
  if (added.status !== 0) {
    remove();
    return { why: `git worktree add failed for ${commit.slice(0, 12)}` };
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const built = spawnSync(process.execPath, [join(dir, 'scripts', 'build.mjs')], { cwd: dir, stdio: 'ignore', timeout: 300_000 });
  if (built.status !== 0) {
    remove();
    return { why: `the build of ${commit.slice(0, 12)} failed` };
  }
  return { cli: join(dir, 'dist', 'cli', 'main.js'), commit, remove };
}

export type BaselineRounds = Array<Record<BaselineScenario, { current: LatencyResult; baseline: LatencyResult }>>;

/** `count` rounds of each scenario, this build and the baseline in turns, the order flipped each round. */
export async function baselineRounds(current: Route, baseline: Route, ctx: Context, plan: Plan['s2'], count: number): Promise<BaselineRounds> {
  const out: BaselineRounds = [];
  for (let i = 0; i < count; i++) {
    const round: Partial<Record<BaselineScenario, { current: LatencyResult; baseline: LatencyResult }>> = {};
    for (const scenario of BASELINE_SCENARIOS) {
      const run = (route: Route) =>
        s2Parallel(route, ctx, plan, scenario === 's8' ? AWS_HOST : MAIN_HOST, scenario === 's10' ? rpcLoad(route, ctx, 'mcp') : undefined);
      const first = i % 2 === 0 ? current : baseline;
      const a = await run(first);
      const b = await run(first === current ? baseline : current);
      round[scenario] = first === current ? { current: a, baseline: b } : { current: b, baseline: a };
    }
    out.push(round as Record<BaselineScenario, { current: LatencyResult; baseline: LatencyResult }>);
  }
  return out;
}

export interface BaselineChange {
  scenario: BaselineScenario;
  current: StoredFigure;
  baseline: StoredFigure;
  /** This build ÷ the baseline, minus 1: +0.05 is 5% more. */
  cpuChange: number;
  rpsChange: number;
}

export function baselineChanges(rounds: BaselineRounds): BaselineChange[] {
  const fig = (results: LatencyResult[]): StoredFigure => ({
    rps: median(results.map((r) => r.rps)),
    cpuUsPerRequest: median(results.map((r) => ((r.cpuMs ?? Number.NaN) / r.requests) * 1000)),
  });
  return BASELINE_SCENARIOS.map((scenario) => {
    const current = fig(rounds.map((r) => r[scenario].current));
    const baseline = fig(rounds.map((r) => r[scenario].baseline));
    return { scenario, current, baseline, cpuChange: current.cpuUsPerRequest / baseline.cpuUsPerRequest - 1, rpsChange: current.rps / baseline.rps - 1 };
  });
}

const percent = (n: number) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${fixed(n * 100, 1)}%` : 'n/a');

/** The figures of each change as table cells: CPU per request and req/s, each side, and the change. */
function changeCells(c: BaselineChange): string[] {
  return [
    c.scenario,
    `${fixed(c.current.cpuUsPerRequest, 0)} µs`,
    `${fixed(c.baseline.cpuUsPerRequest, 0)} µs`,
    percent(c.cpuChange),
    fixed(c.current.rps, 0),
    fixed(c.baseline.rps, 0),
    percent(c.rpsChange),
  ];
}

export function baselineTable(changes: readonly BaselineChange[], stored: BaselineFile | undefined, commit: string): string {
  const rows = changes.map((c) => {
    const kept = stored?.figures[c.scenario];
    return [...changeCells(c), kept ? `${fixed(kept.cpuUsPerRequest, 0)} µs, ${fixed(kept.rps, 0)} req/s` : ''];
  });
  return [
    table(['scenario', 'CPU/req now', 'baseline', 'change', 'req/s now', 'baseline', 'change', 'baseline.json (stored)'], rows),
    `baseline ${commit.slice(0, 12)}${stored ? ` (${stored.label}; stored figures from ${stored.measured}, ${stored.machine})` : ''}, re-measured in this run, interleaved`,
  ].join('\n');
}

/** The held-values pairing (bench/held.ts): "current" is the keyway holding logins, "baseline" the one holding none. */
export function heldTable(changes: readonly BaselineChange[]): string {
  return table(['scenario', 'CPU/req holding logins', 'holding none', 'change', 'req/s holding logins', 'holding none', 'change'], changes.map(changeCells));
}
