// One agent's flood must not delay another (issue 60, fault 7): while agent `flood` holds many
// parallel 1 MiB uploads on a grant whose upstream stalls, agent `quiet` sends one GET a second to
// another granted host, each on a new connection (CONNECT, TLS, request), and every one must be
// answered within 1.5 s on this machine.
//
//   node bench/agent-flood.ts [--uploads 300] [--seconds 20] [--stall no-read|no-answer] [--body-kib 1024]
//                             [--cpu-prof DIR] [--cli PATH: another build's src/cli/main.ts, to compare] [--trace]
//
// Stalls: `no-read` reads the request head and never another byte (the uploads fill the socket
// buffers and wait); `no-answer` reads every body and never answers. keyway runs as a child
// process (its own event loop, as deployed), with bench/event-loop-probe.mjs loaded, so its event
// loop delay and memory are read beside the quiet agent's latencies. Loopback only; the flood and
// the quiet agent are bounded in count and time, and every request has a deadline.
//
// Printed: the quiet agent's p50 and max latency (and when its slowest request got its CONNECT
// answered, its TLS handshake done and its answer's head, in ms from its start), the flood's
// outcomes, keyway's event-loop delay and memory, and keyway_cpu_while_pending_ms: the CPU time keyway
// spent while each quiet request was pending, i.e. the work it waited behind. On a machine busy with
// other processes keyway gets a fraction of a core and every wall figure stretches by that much;
// this one does not (the load average is printed beside it). The exit code is 0 either way: a MISS
// is a figure to read, not a failure.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { startKeywayChild } from './keyway-child.ts';
import { processCpuMs } from './proc.ts';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '20' },
    'body-kib': { type: 'string', default: '1024' },
    stall: { type: 'string', default: 'no-read' },
    'cpu-prof': { type: 'string' },
    cli: { type: 'string' },
    trace: { type: 'boolean', default: false },
    'flood-driver': { type: 'string' },
  },
});
const UPLOADS = Math.min(Number(values.uploads), 1_000);
const SECONDS = Math.min(Number(values.seconds), 120);
const STALL = values.stall === 'no-answer' ? 'no-answer' : 'no-read';
const BODY = Buffer.alloc(Math.min(Number(values['body-kib']), 16 * 1024) * 1024, 0x61);
const BOUND_MS = 1_500;
/** The quiet agent's own deadline per request: past it the request counts as unanswered. */
const QUIET_DEADLINE_MS = 15_000;
const STALL_HOST = 'stall.example.test';
const OK_HOST = 'ok.example.test';
const FLOOD = { id: 'flood', key: 'flood-key-0123456789abcdef0123456789' };
const QUIET = { id: 'quiet', key: 'quiet-key-0123456789abcdef0123456789' };
const PROBE = fileURLToPath(new URL('./event-loop-probe.mjs', import.meta.url));

/** A TLS server that takes connections and request heads and then stalls, as --stall says. */
function startStallUpstream(): Promise<{ port: number; close(): void; bytes(): number }> {
  let bytes = 0;
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let head = '';
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (STALL === 'no-answer') return; // reads everything, answers nothing
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.pause(); // never another byte: keyway's writes fill the buffers and wait
      }
    };
    socket.on('data', onData);
  });
  return listen(server).then((port) => ({
    port,
    bytes: () => bytes,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  }));
}

function startOkUpstream(): Promise<{ port: number; close(): void }> {
  const server = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  return listen(server).then((port) => ({
    port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  }));
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function basic(agent: { id: string; key: string }): string {
  return `Basic ${Buffer.from(`${agent.id}:${agent.key}`).toString('base64')}`;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

if (values['flood-driver']) {
  await floodDriver(JSON.parse(values['flood-driver']) as FloodPlan);
  process.exit(0);
}

interface FloodPlan {
  proxyUrl: string;
  keywayCa: string;
  seconds: number;
}

/**
 * The flooding agent, in a process of its own (so its 300 TLS connections do not slow the quiet
 * agent's client): the stalled upstream and every upload on its own connection, all at once, each
 * given up at the end. Says the upstream's port on stdout once listening, the outcomes at the end.
 */
async function floodDriver(plan: FloodPlan): Promise<void> {
  const stall = await startStallUpstream();
  const requestTls = { ca: [plan.keywayCa, TLS_FIXTURES.ca] };
  const agent = new ProxyAgent({ uri: plan.proxyUrl, token: basic(FLOOD), connections: UPLOADS, requestTls, allowH2: false });
  const outcomes: Record<string, number> = {};
  const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
  const uploads = Array.from({ length: UPLOADS }, async () => {
    try {
      const res = await request(`https://${STALL_HOST}:${stall.port}/upload`, {
        dispatcher: agent,
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/octet-stream' },
        signal: AbortSignal.timeout(plan.seconds * 1_000),
      });
      await res.body.dump();
      count(String(res.statusCode));
    } catch (err) {
      count((err as Error).name);
    }
  });
  await Promise.allSettled(uploads);
  await agent.destroy();
  stall.close();
  process.stdout.write(JSON.stringify({ outcomes, stallUpstreamMiB: Math.round(stall.bytes() / 1048576) }));
}

/** When each step of one quiet request was done, in ms from its start. */
interface QuietPhases {
  connected: number;
  tunnel: number;
  tls: number;
  head: number;
  status: number;
}

/**
 * The quiet agent's request, on a new connection, written by hand so each step is timed: TCP to
 * keyway, its 200 to the CONNECT, the TLS handshake with keyway, the response head. Rejects past
 * QUIET_DEADLINE_MS.
 */
function quietRequest(proxyPort: number, keywayCa: string, okPort: number): Promise<QuietPhases> {
  const t0 = performance.now();
  const at = () => Math.round(performance.now() - t0);
  const authority = `${OK_HOST}:${okPort}`;
  return new Promise((resolve, reject) => {
    const phases: QuietPhases = { connected: -1, tunnel: -1, tls: -1, head: -1, status: 0 };
    const socket = netConnect({ host: '127.0.0.1', port: proxyPort });
    let tls: TLSSocket | undefined;
    const timer = setTimeout(() => fail(new Error(`no answer within ${QUIET_DEADLINE_MS} ms (${JSON.stringify(phases)})`)), QUIET_DEADLINE_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      tls?.destroy();
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      phases.connected = at();
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(QUIET)}\r\n\r\n`);
    });
    let head = '';
    const onConnectAnswer = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onConnectAnswer);
      phases.tunnel = at();
      if (!head.startsWith('HTTP/1.1 200')) return fail(new Error(`CONNECT answered ${head.split('\r\n')[0]}`));
      tls = tlsConnect({ socket, servername: OK_HOST, ca: keywayCa }, () => {
        phases.tls = at();
        tls!.write(`GET /ping HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
      });
      tls.once('error', fail);
      let answer = '';
      tls.on('data', (c: Buffer) => {
        answer += c.toString('latin1');
        if (phases.head === -1 && answer.includes('\r\n\r\n')) {
          phases.head = at();
          phases.status = Number(answer.slice(9, 12));
          clearTimeout(timer);
          tls!.destroy();
          resolve(phases);
        }
      });
    };
    socket.on('data', onConnectAnswer);
  });
}

const ok = await startOkUpstream();
const probeFile = join(tmpdir(), `keyway-loop-probe-${process.pid}.jsonl`);
const keyway = await startKeywayChild({
  hosts: [STALL_HOST, OK_HOST],
  domains: [OK_HOST],
  secret: 'bench-ok-secret-0123456789abcdef',
  upstreamCa: [TLS_FIXTURES.caPath],
  nodeArgs: ['--import', PROBE],
  cpuProfileDir: values['cpu-prof'],
  cli: values.cli,
  env: { KEYWAY_LOOP_PROBE: probeFile, FLOOD_KEY: FLOOD.key, QUIET_KEY: QUIET.key, STALL_SECRET: 'bench-stall-secret-0123456789abcdef' },
  config: {
    grants: { stall: { type: 'bearer', domains: [STALL_HOST], secret: 'env:STALL_SECRET' } },
    agents: {
      [FLOOD.id]: { key: 'env:FLOOD_KEY', grants: ['stall'] },
      [QUIET.id]: { key: 'env:QUIET_KEY', grants: ['bench'] },
    },
  },
});

const started = Date.now();
const endAt = started + SECONDS * 1_000;
const plan: FloodPlan = { proxyUrl: keyway.url, keywayCa: keyway.caPem, seconds: SECONDS };
const driver = spawn(
  process.execPath,
  [
    fileURLToPath(import.meta.url),
    '--uploads',
    String(UPLOADS),
    '--stall',
    STALL,
    '--body-kib',
    String(BODY.length / 1024),
    '--flood-driver',
    JSON.stringify(plan),
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
let driverOut = '';
driver.stdout.on('data', (c: Buffer) => (driverOut += c.toString()));
const killer = setTimeout(() => driver.kill('SIGKILL'), SECONDS * 1_000 + 20_000);
const floodDone = once(driver, 'exit').then(() => {
  clearTimeout(killer);
  try {
    return JSON.parse(driverOut) as { outcomes: Record<string, number>; stallUpstreamMiB: number };
  } catch {
    return { outcomes: { 'driver failed': 1 }, stallUpstreamMiB: 0 };
  }
});

// Give the flood a second to take hold before the first quiet request.
await new Promise((r) => setTimeout(r, 1_000));

const latencies: number[] = [];
/** keyway's CPU time while each quiet request was pending: what it waited behind, whatever the machine's load. */
const cpuWhilePending: number[] = [];
const failures: string[] = [];
const slowest: { ms: number; phases: QuietPhases | undefined } = { ms: 0, phases: undefined };
while (Date.now() < endAt - 1_000) {
  const tick = Date.now();
  const t0 = performance.now();
  let phases: QuietPhases | undefined;
  const cpuBefore = processCpuMs(keyway.pid);
  try {
    phases = await quietRequest(keyway.port, keyway.caPem, ok.port);
    if (phases.status !== 200) failures.push(`status ${phases.status}`);
  } catch (err) {
    failures.push((err as Error).message);
  }
  const ms = performance.now() - t0;
  latencies.push(ms);
  cpuWhilePending.push(processCpuMs(keyway.pid) - cpuBefore);
  if (ms > slowest.ms) Object.assign(slowest, { ms, phases });
  if (values.trace) console.error(`quiet +${((Date.now() - started) / 1000).toFixed(1)}s ${ms.toFixed(0)} ms ${JSON.stringify(phases)}`);
  await new Promise((r) => setTimeout(r, Math.max(0, 1_000 - (Date.now() - tick))));
}

const flood = await floodDone;
const memoryAtEnd = keyway.memory();
await keyway.stop();
ok.close();

const probe = readFileSync(probeFile, 'utf8')
  .trim()
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { at: number; maxMs: number; p99Ms: number; heapMiB: number; externalMiB: number; rssMiB: number });
rmSync(probeFile, { force: true });
if (values.trace) for (const p of probe) console.error(`probe +${((p.at - started) / 1000).toFixed(2)}s ${JSON.stringify(p)}`);
const during = probe.filter((p) => p.at >= started && p.at <= endAt);
const sorted = [...latencies].sort((a, b) => a - b);
const max = sorted.at(-1) ?? Number.NaN;
console.log(
  JSON.stringify(
    {
      uploads: UPLOADS,
      stall: STALL,
      seconds: SECONDS,
      quiet_requests: latencies.length,
      quiet_failures: failures.length,
      first_failure: failures[0] ?? null,
      quiet_p50_ms: Math.round(percentile(sorted, 50)),
      quiet_max_ms: Math.round(max),
      keyway_cpu_while_pending_ms: {
        p50: percentile(
          [...cpuWhilePending].sort((a, b) => a - b),
          50,
        ),
        max: Math.max(...cpuWhilePending),
      },
      over_bound: sorted.filter((ms) => ms > BOUND_MS).length,
      slowest_phases_ms: slowest.phases ?? null,
      flood_outcomes: flood.outcomes,
      stall_upstream_mib: flood.stallUpstreamMiB,
      keyway_loop_delay_max_ms: Math.max(0, ...during.map((p) => p.maxMs)),
      keyway_external_peak_mib: Math.max(0, ...during.map((p) => p.externalMiB)),
      keyway_rss_peak_mib: Math.max(0, ...during.map((p) => p.rssMiB)),
      keyway_memory_at_end: memoryAtEnd,
      load_average: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      verdict: failures.length === 0 && max <= BOUND_MS ? 'PASS' : 'MISS',
    },
    null,
    1,
  ),
);
