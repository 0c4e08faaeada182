// keyway soak: `npm run soak [-- --duration 30m --rate 2000 --json]` (USAGE in bench/soak/options.ts).
// An open-loop load (requests fall due at a fixed rate whatever the answers do; latency counts from
// the due time) through keyway, run as a child on the built dist/ with its runtime settings: most
// requests get a bearer credential injected, one a second goes to a host name keyway has not seen
// (a new leaf), one in ten to an oauth2 grant whose token is refreshed, with rotation, every few
// seconds. Prints a line per window (ok/s, p50/p99, errors by kind, keyway's RSS and descriptors),
// then the targets: 0 errors, RSS growth < 10 MiB after the first minute, p99 drift < 20%,
// descriptors back to baseline once the load drains. Exit 1 when one is missed. KEYWAY_RUNTIME and
// MALLOC_* set for this command reach the keyway child, to compare allocator settings (A/B).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { headerLine, summary, windowLine } from './soak/format.ts';
import { parseOptions, USAGE, UsageError, type SoakOptions } from './soak/options.ts';
import { runSoak } from './soak/run.ts';
import { DIST_CLI } from './soak/setup.ts';

const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
const WARMUP_MS = 10_000;

function parse(): SoakOptions {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  try {
    return parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`soak: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
}

/** dist/cli/main.js, refused when missing or older than src/ (npm run soak builds it first). */
function builtCli(): string {
  const stale = existsSync(DIST_CLI)
    ? readdirSync(SRC_DIR, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts'))
        .filter((f) => statSync(join(SRC_DIR, f)).mtimeMs > statSync(DIST_CLI).mtimeMs)
    : ['(no dist/cli/main.js)'];
  if (stale.length > 0) {
    console.error(`soak: dist/ is missing or older than src/ (${stale.slice(0, 3).join(', ')}); use npm run soak, or npm run build first, or --src`);
    process.exit(2);
  }
  return DIST_CLI;
}

async function main(): Promise<number> {
  const options = parse();
  const cli = options.fromSource ? undefined : builtCli();
  const say = options.json ? () => undefined : (text: string) => process.stdout.write(`${text}\n`);
  // The whole run is bounded: setup, warm-up, the load, its drain and the descriptor check.
  const watchdogMs = options.durationMs + 180_000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`soak: still running ${watchdogMs / 1000} s after start; giving up\n`);
    process.exit(3);
  }, watchdogMs);
  watchdog.unref();
  // Exiting kills the keyway child (runSoak's exit hook).
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));

  say(
    `keyway soak: ${options.rate} req/s open loop for ${options.durationMs / 1000} s (after a ${WARMUP_MS / 1000} s warm-up), windows of ${options.windowMs / 1000} s`,
  );
  say(
    `machine: ${cpus().length} CPUs, load average ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} at start (shared: figures are noisy)`,
  );
  const report = await runSoak(
    { ...options, cli, warmupMs: WARMUP_MS },
    {
      onStarted: (k) => say(`keyway pid ${k.pid} (${cli ? 'dist' : 'src'}), RSS ${k.rssAfterStartMiB.toFixed(1)} MiB after start\n\n${headerLine()}`),
      onWindow: (w) => say(windowLine(w)),
    },
  );
  clearTimeout(watchdog);
  if (options.json)
    process.stdout.write(
      `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavgAtEnd: loadavg(), ...report }, null, 2)}\n`,
    );
  else say(summary(report));
  return report.pass ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
