// The clients doctor runs (curl, node, python3 with requests, git): how each is found, called, and
// how its output says which HTTP status it reached or what went wrong.

import { inSingleExecutable } from '../../../process/own-program.ts';
import type { Context } from './context.ts';
import { onPath, runProcess, type ProcessResult } from './runner.ts';

export interface ClientSpec {
  name: string;
  /** The variable(s) through which it trusts keyway's CA, for the fix hint. */
  trustVars: string;
  /** The executable, or undefined (with why) when it is not installed. */
  find(ctx: Context, env: Record<string, string>): Promise<{ path: string } | { missing: string }>;
  args(url: string, timeoutMs: number): string[];
  /** Extra environment, beyond the keyway env variables. */
  extraEnv?: Record<string, string>;
  /** The HTTP status the client reached, or null with its error. */
  outcome(result: ProcessResult): { status: number } | { error: string };
}

const NODE_SCRIPT = `
fetch(process.argv[1], { signal: AbortSignal.timeout(Number(process.argv[2])) })
  .then((r) => { console.log(r.status); return r.arrayBuffer(); })
  .catch((e) => { console.error(String(e?.cause?.code ?? e?.cause?.message ?? e?.message ?? e)); process.exit(1); });
`;

const PYTHON_SCRIPT = `
import sys
try:
    import requests
    r = requests.get(sys.argv[1], timeout=float(sys.argv[2]))
    print(r.status_code)
except Exception as e:
    print(type(e).__name__ + ': ' + str(e)[:500], file=sys.stderr)
    sys.exit(1)
`;

const statusFromStdout = (r: ProcessResult): { status: number } | { error: string } => {
  const status = /^(\d{3})\s*$/.exec(r.stdout.trim());
  if (r.code === 0 && status) return { status: Number(status[1]) };
  return { error: errorLine(r) };
};

/** The line of a client's stderr that says what went wrong (curl explains at length after it). */
function errorLine(r: ProcessResult): string {
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const marked = lines.find((l) => /^(curl: \(\d+\)|fatal:|error:)/i.test(l));
  return marked ?? lines.at(-1) ?? (r.timedOut ? 'timed out' : `exit code ${r.code}`);
}

export const CLIENTS: ClientSpec[] = [
  {
    name: 'curl',
    trustVars: 'CURL_CA_BUNDLE (or SSL_CERT_FILE)',
    find: async (_ctx, env) => onPath('curl', env),
    // -q: ignore ~/.curlrc. No --fail: any HTTP answer shows that TLS worked.
    args: (url, timeoutMs) => ['-q', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(Math.ceil(timeoutMs / 1000)), url],
    outcome: statusFromStdout,
  },
  {
    name: 'node',
    trustVars: 'NODE_EXTRA_CA_CERTS (and NODE_USE_ENV_PROXY=1 for the proxy, Node 24 and later)',
    // The Node running keyway, unless keyway is the single executable (its Node runs keyway alone): then the PATH's.
    find: async (_ctx, env) => (inSingleExecutable() ? onPath('node', env) : { path: process.execPath }),
    args: (url, timeoutMs) => ['-e', NODE_SCRIPT, url, String(timeoutMs)],
    outcome: statusFromStdout,
  },
  {
    name: 'python3 (requests)',
    trustVars: 'REQUESTS_CA_BUNDLE',
    find: async (_ctx, env) => {
      const found = await onPath('python3', env);
      if ('missing' in found) return found;
      const probe = await runProcess(found.path, ['-c', 'import requests'], { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '' }, 10_000);
      return probe.code === 0 ? found : { missing: 'python3 is installed but not its requests module (pip install requests)' };
    },
    args: (url, timeoutMs) => ['-c', PYTHON_SCRIPT, url, String(timeoutMs / 1000)],
    outcome: statusFromStdout,
  },
  {
    name: 'git',
    trustVars: 'GIT_SSL_CAINFO',
    find: async (_ctx, env) => onPath('git', env),
    args: (url) => ['ls-remote', url],
    // No system or global config (a credential helper or http.proxy there would change the result),
    // and never a prompt.
    extraEnv: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' },
    outcome: (r) => {
      if (r.code === 0) return { status: 200 };
      // These messages come only from an HTTP answer, which git reads after TLS verification passed.
      const http = /The requested URL returned error: (\d{3})/.exec(r.stderr);
      if (http) return { status: Number(http[1]) };
      if (/repository '.*' not found/.test(r.stderr)) return { status: 404 };
      if (/not valid: is this a git repository\?/.test(r.stderr)) return { status: 200 };
      return { error: errorLine(r) };
    },
  },
];
