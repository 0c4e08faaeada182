// Command-line options of `npm run soak`, parsed and bounded here so the rest can trust them.

export interface SoakOptions {
  /** How long the load runs, after the warm-up. */
  durationMs: number;
  /** Requests scheduled per second (open loop: independent of responses). */
  rate: number;
  /** Length of one reporting window. */
  windowMs: number;
  /** Requests in flight at most; a request due beyond that is not sent and counts as an `overload` error. */
  maxInFlight: number;
  /** Keep-alive connections per origin through keyway. */
  connections: number;
  /** One request every this long goes to a host name keyway has not seen (a new leaf). */
  newHostEveryMs: number;
  /** One request in this many goes to the oauth2 grant's host. */
  oauthEvery: number;
  /** expires_in of the access tokens the token endpoint issues (keyway refreshes 1 s early). */
  tokenLifetimeS: number;
  /** Print one JSON document instead of text. */
  json: boolean;
  /** Run src/cli/main.ts instead of the built dist/cli/main.js. */
  fromSource: boolean;
  /** A command keyway runs under (e.g. heaptrack), split on spaces; empty: none. */
  wrap: string[];
}

export const USAGE = `usage: npm run soak -- [--duration 60s] [--rate 2000] [--window 10s] [--max-in-flight 512] [--json] [--src]
  --duration D       how long the load runs (s, m, h; default 60s, at most 2h); a warm-up comes first
  --rate N           requests scheduled per second, open loop (default 2000)
  --window D         reporting window (default 10s)
  --max-in-flight N  requests in flight at most; one due beyond that is an "overload" error (default 512)
  --connections N    keep-alive connections per origin through keyway (default 64)
  --new-host-every D one request this often goes to a host name keyway has not seen (default 1s)
  --token-lifetime D expires_in of the oauth2 grant's access tokens (default 4s; keyway refreshes 1 s
                     early, so 2s rotates a token a second: ten minutes' worth of tokens in four)
  --json             print one JSON document instead of text
  --src              run keyway from src/ (default: the built dist/, which npm run soak builds first)
  --wrap "CMD ARGS"  run keyway under a command, e.g. --wrap "heaptrack -o /tmp/kw" (keyway's runtime
                     flags are then given on its command line; figures are the wrapped process's)
Exit 0 when every target is met, 1 when one is missed (the output says which), 2 on bad usage.`;

export const DEFAULTS: SoakOptions = {
  durationMs: 60_000,
  rate: 2000,
  windowMs: 10_000,
  maxInFlight: 512,
  connections: 64,
  newHostEveryMs: 1000,
  oauthEvery: 10,
  tokenLifetimeS: 4,
  json: false,
  fromSource: false,
  wrap: [],
};

const MAX_DURATION_MS = 2 * 60 * 60 * 1000;

export class UsageError extends Error {}

/** `90s`, `15m`, `1h`, `500ms`, or a bare number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match?.[1]) throw new UsageError(`not a duration: ${text} (try 60s, 10m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  return Math.round(Number(match[1]) * unit);
}

function bounded(name: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function parseOptions(argv: readonly string[]): SoakOptions {
  const options: SoakOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--duration':
        options.durationMs = bounded('--duration', parseDuration(value()), 1000, MAX_DURATION_MS);
        break;
      case '--rate':
        options.rate = bounded('--rate', Number(value()), 1, 20_000);
        break;
      case '--window':
        options.windowMs = bounded('--window', parseDuration(value()), 500, 600_000);
        break;
      case '--max-in-flight':
        options.maxInFlight = bounded('--max-in-flight', Number(value()), 1, 10_000);
        break;
      case '--connections':
        options.connections = bounded('--connections', Number(value()), 1, 1024);
        break;
      case '--new-host-every':
        options.newHostEveryMs = bounded('--new-host-every', parseDuration(value()), 10, 3_600_000);
        break;
      case '--token-lifetime':
        options.tokenLifetimeS = bounded('--token-lifetime', parseDuration(value()) / 1000, 2, 3600);
        break;
      case '--json':
        options.json = true;
        break;
      case '--src':
        options.fromSource = true;
        break;
      case '--wrap':
        options.wrap = value().split(/\s+/).filter(Boolean);
        if (options.wrap.length === 0) throw new UsageError('--wrap: expected a command');
        break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  return options;
}
