// The options of `npm run bench -- ...` (bench/run.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
const DIST_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export const USAGE = `usage: node bench/run.ts [--quick] [--rounds=N] [--warmup=SECONDS] [--no-squid] [--no-floor] [--cpu-prof] [--profile] [--dist] [--store=postgres] [--workers=N] [--no-scaling] [--baseline=REF] [--no-baseline] [--node-arg=OPTION]...
  --quick            short smoke run (1 round, small counts, 0.2 s warm-up)
  --rounds=N         rounds per scenario (default 3; the figures are medians over them, targets need >= 3)
  --warmup=SECONDS   warm-up of each route before each timed run (default 1: what a user's first
                     requests see); a long one (e.g. 10) shows the steady state
  --no-squid         leave out the squid peer (squid ssl-bump, run from /usr/sbin/squid)
  --no-floor         leave out the bare-forwarder peer (bench/bare-forwarder.mjs)
  --cpu-prof         profile the keyway child (node --cpu-prof) and print where its CPU time went
  --profile          per scenario (s2-s5), where keyway's and the bare forwarder's CPU went (keyway's own
                     files by folder of src/, npm packages, Node, GC, native writes), and what holds
                     their memory after s2 and s5 (heap spaces, heap snapshot by type, caches);
                     report in bench/results/profile-*/profile.md (with --dist: rebuilt with source maps)
  --dist             run the built dist/cli/main.js instead of src/cli/main.ts (npm run build first)
  --workers=N        s11: keyway's proxy.workers and squid's SMP workers against 1 (default: the cores)
  --no-scaling       leave out s11 (two more proxies with N workers each)
  --baseline=REF     re-measure this commit beside this build, interleaved (s2, s8, s10); default in
                     a full run: bench/baseline.json's ref (the last landed build)
  --no-baseline      leave the baseline out
  --store=postgres   keep keyway's store in a throwaway PostgreSQL (store.backend: postgres) instead of the file
  --node-arg=OPTION  extra node option for the keyway child, e.g. --node-arg=--max-old-space-size=96
keyway start re-executes itself under its runtime settings (src/cli/proxy-runtime.ts); node options
given here come after those and win. KEYWAY_RUNTIME=as-is and MALLOC_* in the environment are passed
to the child, to compare settings.`;

export interface RunOptions {
  quick: boolean;
  cpuProf: boolean;
  /** Per-scenario CPU profiles and memory breakdowns of keyway and the floor (bench/scenario-profiler.ts). */
  profile: boolean;
  dist: boolean;
  postgres: boolean;
  nodeArgs: string[];
  /** Undefined: the plan's own (3 full, 1 quick). */
  rounds: number | undefined;
  warmupMs: number | undefined;
  squid: boolean;
  floor: boolean;
  /** s11: run the N-worker proxies. */
  scaling: boolean;
  /** Undefined: one per core. */
  workers: number | undefined;
  /** A commit to re-measure beside this build; false: none; undefined: baseline.json's in a full run. */
  baseline: string | false | undefined;
}

const FLAGS = ['--quick', '--cpu-prof', '--profile', '--dist', '--store=postgres', '--store=file', '--no-squid', '--no-floor', '--no-scaling', '--no-baseline'];
const MAX_WORKERS = 64;
const MAX_ROUNDS = 20;
const MAX_WARMUP_S = 120;

/** Parses argv; an unknown or malformed option is returned as an error message. */
export function parseRunOptions(argv: readonly string[]): RunOptions | { error: string } {
  const valued = (name: string) => argv.filter((a) => a.startsWith(`${name}=`)).map((a) => a.slice(name.length + 1));
  const unknown = argv.filter((a) => !FLAGS.includes(a) && !/^--(node-arg|rounds|warmup|workers|baseline)=/.test(a));
  if (unknown.length > 0) return { error: `unknown option ${unknown.join(' ')}` };
  const rounds = valued('--rounds').at(-1);
  const warmup = valued('--warmup').at(-1);
  const workers = valued('--workers').at(-1);
  const ref = valued('--baseline').at(-1);
  if (ref !== undefined && !/^[\w./-]{1,100}$/.test(ref)) return { error: '--baseline takes a commit, branch or tag' };
  if (workers !== undefined && !(/^\d+$/.test(workers) && Number(workers) >= 2 && Number(workers) <= MAX_WORKERS)) {
    return { error: `--workers must be a whole number from 2 to ${MAX_WORKERS}` };
  }
  if (rounds !== undefined && !(/^\d+$/.test(rounds) && Number(rounds) >= 1 && Number(rounds) <= MAX_ROUNDS)) {
    return { error: `--rounds must be a whole number from 1 to ${MAX_ROUNDS}` };
  }
  if (warmup !== undefined && !(/^\d+(\.\d+)?$/.test(warmup) && Number(warmup) <= MAX_WARMUP_S)) {
    return { error: `--warmup must be a number of seconds from 0 to ${MAX_WARMUP_S}` };
  }
  return {
    quick: argv.includes('--quick'),
    cpuProf: argv.includes('--cpu-prof'),
    profile: argv.includes('--profile'),
    dist: argv.includes('--dist'),
    postgres: argv.includes('--store=postgres'),
    nodeArgs: valued('--node-arg'),
    rounds: rounds === undefined ? undefined : Number(rounds),
    warmupMs: warmup === undefined ? undefined : Number(warmup) * 1000,
    squid: !argv.includes('--no-squid'),
    floor: !argv.includes('--no-floor'),
    scaling: !argv.includes('--no-scaling'),
    workers: workers === undefined ? undefined : Number(workers),
    baseline: argv.includes('--no-baseline') ? false : valued('--baseline').at(-1),
  };
}

/** dist/cli/main.js, refused when missing or older than any file under src/ (a stale build). */
export function builtCli(): string {
  if (!existsSync(DIST_CLI)) {
    console.error('--dist: dist/cli/main.js is missing; run `npm run build` first');
    process.exit(2);
  }
  const built = statSync(DIST_CLI).mtimeMs;
  const stale = readdirSync(SRC_DIR, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => statSync(join(SRC_DIR, f)).mtimeMs > built);
  if (stale.length > 0) {
    console.error(`--dist: dist/ is older than src/ (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', …' : ''}); run \`npm run build\` first`);
    process.exit(2);
  }
  return DIST_CLI;
}
