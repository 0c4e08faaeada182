import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CANARY } from './fixtures.ts';
import { cleanEnv, runProcess, type TestProxy } from './keyway.ts';
import { slack } from './load.ts';
import type { SeenRequest, TestUpstream } from './upstream.ts';
import { type Dispatcher, fetch as undiciFetch } from 'undici';

// Small helpers for driving real clients (curl, node, python, git) through keyway.

export type ProcessResult = { code: number; stdout: string; stderr: string };

/** A `fetch` whose every call goes by `dispatcher` (a ProxyAgent to keyway): for the SDKs that take a fetch. */
export function fetchVia(dispatcher: Dispatcher): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}

/** What the echo route answers: the request as the upstream saw it. */
export interface Echo {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
}

// Re-exported for the tests that take it from here (configs that `keyway env` reads: port 0 cannot be printed).
export { freePort } from './ports.ts';

/**
 * A client's own bound on one request, in seconds: 10 on an idle machine, stretched by the measured
 * load (a busy machine answers late for want of CPU); the process gets 5 s more to exit (runProcess
 * stretches that bound by the load again).
 */
function clientSeconds(): number {
  return Math.round(slack(10_000, 60_000) / 1000);
}
const processMs = (seconds: number) => (seconds + 5) * 1000;

/** curl with ~/.curlrc ignored (-q must come first). */
export function curl(args: string[], env: Record<string, string>): Promise<ProcessResult> {
  const seconds = clientSeconds();
  return runProcess('curl', ['-q', '-sS', '--max-time', String(seconds), ...args], env, undefined, processMs(seconds));
}

/** curl for the answer's status alone (`-o /dev/null -w %{http_code}`): METHOD with each header and, if given, the body; 0 when none came. */
export async function curlStatus(
  url: string,
  request: { method?: string; headers?: readonly string[]; data?: string },
  env: Record<string, string>,
): Promise<{ status: number; stderr: string }> {
  const args = ['-o', '/dev/null', '-w', '%{http_code}', '-X', request.method ?? 'GET'];
  for (const header of request.headers ?? []) args.push('-H', header);
  if (request.data !== undefined) args.push('--data', request.data);
  const result = await curl([...args, url], env);
  return { status: Number(result.stdout), stderr: result.stderr };
}

/**
 * Node's own global fetch (not undici from node_modules) in a child process on this Node 24 binary;
 * prints {status, body} as JSON on stdout.
 */
export function nodeFetch(url: string, env: Record<string, string>, clientAuthorization?: string): Promise<ProcessResult> {
  const seconds = clientSeconds();
  const script = `
    const headers = ${JSON.stringify(clientAuthorization === undefined ? {} : { authorization: clientAuthorization })};
    fetch(${JSON.stringify(url)}, { headers, signal: AbortSignal.timeout(${seconds * 1000}) })
      .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))
      .catch((e) => { console.error('fetch failed:', e?.cause?.code ?? e?.cause?.message ?? e?.message); process.exit(1); });
  `;
  return runProcess(process.execPath, ['-e', script], env, undefined, processMs(seconds));
}

const PYTHON_SCRIPT = `
import json, sys, requests
headers = {'Authorization': sys.argv[2]} if sys.argv[2] else {}
r = requests.get(sys.argv[1], headers=headers, timeout=float(sys.argv[3]))
print(json.dumps({'status': r.status_code, 'body': r.text}))
`;

let pythonFound: Promise<string | undefined> | undefined;

/**
 * The absolute path of a python3 that can `import requests`: python3 on PATH (resolved to the real
 * interpreter, so that a pyenv shim does not depend on the client's HOME), then /usr/bin/python3.
 */
export function findPythonWithRequests(): Promise<string | undefined> {
  pythonFound ??= (async () => {
    for (const candidate of ['python3', '/usr/bin/python3']) {
      try {
        const r = await runProcess(candidate, ['-c', 'import sys, requests; print(sys.executable)'], cleanEnv(), undefined, 15_000);
        const executable = r.stdout.trim();
        if (r.code === 0 && executable) return executable;
      } catch {
        // not installed: try the next one
      }
    }
    return undefined;
  })();
  return pythonFound;
}

export async function pythonRequests(url: string, env: Record<string, string>, clientAuthorization?: string): Promise<ProcessResult> {
  const python = await findPythonWithRequests();
  if (!python) throw new Error('no python3 with the requests module (tried python3 on PATH and /usr/bin/python3): install python3-requests');
  const seconds = clientSeconds();
  return runProcess(python, ['-c', PYTHON_SCRIPT, url, clientAuthorization ?? '', String(seconds)], env, undefined, processMs(seconds));
}

/** git with no user or system config (no credential helpers, no http.proxy from ~/.gitconfig) and no prompts. */
export function git(args: string[], env: Record<string, string>): Promise<ProcessResult> {
  return runProcess('git', args, { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' }, undefined, 15_000);
}

/** Parses a client's {status, body} line, where body is the upstream's echo. */
export function parseClientEcho(stdout: string): { status: number; echo: Echo } {
  const { status, body } = JSON.parse(stdout) as { status: number; body: string };
  return { status, echo: JSON.parse(body) as Echo };
}

/** The one request the upstream saw carrying this tag in its query string. */
export function seenWithTag(upstream: TestUpstream, tag: string): SeenRequest {
  const matches = upstream.seen.filter((r) => new URL(r.url, 'https://x').searchParams.get('tag') === tag);
  if (matches.length !== 1) throw new Error(`expected the upstream to see exactly one request tagged ${tag}, saw ${matches.length}`);
  return matches[0]!;
}

/** Polls until check() is true, at most timeoutMs (the audit line is written as the response ends). */
export async function waitFor(check: () => boolean, idleTimeoutMs = 2_000): Promise<boolean> {
  // A wait on an event: the limit is for one that never comes, stretched by the measured load.
  const timeoutMs = slack(idleTimeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < Math.ceil(timeoutMs / 20) && Date.now() < deadline; i++) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/** Every place the canary must not reach: the client's stderr, the proxy's app log, the audit file. */
export function canaryLeaks(proxy: TestProxy, ...clientOutputs: string[]): string[] {
  const places: Array<[string, string]> = [
    ...clientOutputs.map((text, i): [string, string] => [`client output #${i}`, text]),
    ['proxy.logs', proxy.logs.join('')],
    ['audit file', readAudit(proxy)],
  ];
  return places.filter(([, text]) => text.includes(CANARY)).map(([where]) => where);
}

function readAudit(proxy: TestProxy): string {
  try {
    return readFileSync(proxy.auditPath, 'utf8');
  } catch {
    return '';
  }
}

// A minimal git smart-HTTP server: the ref advertisement of a one-ref repository, which is all that
// `git ls-remote` needs (it never POSTs to git-upload-pack).

export const GIT_REF_SHA = '1b0c3d2e4f5a69788796a5b4c3d2e1f001122334';

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

export function gitAdvertisement(): string {
  return (
    pktLine('# service=git-upload-pack\n') +
    '0000' +
    pktLine(`${GIT_REF_SHA} HEAD\0symref=HEAD:refs/heads/main agent=keyway-test\n`) +
    pktLine(`${GIT_REF_SHA} refs/heads/main\n`) +
    '0000'
  );
}

/** Upstream handler: answers /repo.git/info/refs?service=git-upload-pack; other paths fall through. */
export function gitHandler(req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'https://x');
  if (url.pathname !== '/repo.git/info/refs') return false;
  if (url.searchParams.get('service') !== 'git-upload-pack') {
    res.writeHead(403).end('dumb http not served');
    return true;
  }
  const body = gitAdvertisement();
  res.writeHead(200, {
    'content-type': 'application/x-git-upload-pack-advertisement',
    'cache-control': 'no-cache',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
  return true;
}

/**
 * Sends one CONNECT on a raw socket and returns the proxy's whole answer (keyway closes the
 * connection after refusing a CONNECT). Bounded by timeoutMs; for checking status, headers and body
 * exactly as the proxy wrote them.
 */
export async function rawConnect(
  proxyPort: number,
  authority: string,
  extraHeaders: string[] = [],
  timeoutMs = 5_000,
): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  const socket = connect(proxyPort, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const timer = setTimeout(() => socket.destroy(new Error(`no complete answer to CONNECT within ${timeoutMs} ms`)), timeoutMs);
  try {
    await once(socket, 'connect');
    socket.write([`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...extraHeaders, '', ''].join('\r\n'));
    await once(socket, 'close');
  } finally {
    clearTimeout(timer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`malformed answer to CONNECT: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: text.slice(split + 4) };
}
