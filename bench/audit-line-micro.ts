// Micro bench of the audit line's per-request path, as s2 makes it under write-ahead: a draft's event
// (fixed fields, secret_source), its write-ahead line (sentLine: phase "sent"), then the outcome line;
// each checked, serialised, costed (room.ts lineCost), sealed into the chain and joined into a batch
// that is encoded once (as file/append-now.ts does). Runs against any checkout's src/, so two builds
// can be compared in turns:
//
//   node --no-maglev bench/audit-line-micro.ts [--a=/path/to/checkout] [--b=/path/to/checkout] [--n=100000] [--turns=8] [--batch=8]
//
// Both checkouts' modules load into one process and run in turns (A, B, B, A, ...), so the machine's
// drift falls on both alike. Prints CPU ns per request (two lines) for each turn and the medians.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const roots = [...new Set([resolve(arg('a') ?? '.'), resolve(arg('b') ?? '.')])];
const n = Number(arg('n') ?? 100_000);
const turns = Number(arg('turns') ?? 8);
const batchSize = Number(arg('batch') ?? 8);

interface Side {
  root: string;
  checkEvent: (event: unknown) => string | null;
  serializeEvent: (event: unknown) => string;
  sealLine: (body: string, seq: number, prev: string) => { line: string; hash: string };
  lineCost: (body: string) => number;
  results: number[];
}

const sides: Side[] = [];
for (const root of roots) {
  const record = await import(pathToFileURL(`${root}/src/audit/record.ts`).href);
  const room = await import(pathToFileURL(`${root}/src/audit/file/room.ts`).href);
  sides.push({ root, ...record, lineCost: room.lineCost, results: [] });
}
const GENESIS_HASH = '0'.repeat(64);

function draftEvent(i: number): Record<string, unknown> {
  return {
    ts: new Date(1_764_000_000_000 + i).toISOString(),
    id: randomUUID(),
    agent: 'bench',
    grant: 'main',
    decision: 'error',
    code: null,
    method: 'GET',
    host: 'upstream.bench.test',
    port: 8443,
    path: `/items/${i % 100}`,
    status: null,
    duration_ms: 0,
    refreshed: false,
    client: '127.0.0.1',
  };
}

const sink: unknown[] = [];
let seq = 0;
let prev = GENESIS_HASH;
let batch: string[] = [];
let pending = 0;

function write(side: Side, event: Record<string, unknown>): void {
  if (side.checkEvent(event) !== null) throw new Error('invalid');
  const body = side.serializeEvent(event);
  pending += side.lineCost(body);
  batch.push(body);
  if (batch.length >= batchSize) flush(side);
}

function flush(side: Side): void {
  let text = '';
  for (const body of batch) {
    const sealed = side.sealLine(body, ++seq, prev);
    prev = sealed.hash;
    text += sealed.line;
  }
  sink[seq & 7] = Buffer.from(text, 'utf8');
  batch = [];
  pending = 0;
}

function oneRequest(side: Side, i: number): void {
  const event = draftEvent(i);
  event['secret_source'] = 'store';
  // proxy/stages/audit-write-ahead.ts sentLine
  write(side, { ...event, decision: 'inject', code: null, status: null, phase: 'sent' });
  event['decision'] = 'inject';
  event['status'] = 200;
  event['duration_ms'] = 1.23;
  write(side, event);
}

function turn(side: Side): number {
  // CPU time, not wall time: on a shared machine the wall clock counts the turns spent descheduled.
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) oneRequest(side, i);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / n;
}

for (const side of sides) turn(side); // warm up
for (let t = 0; t < turns; t++) {
  const order = t % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) side.results.push(turn(side));
}
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const side of sides) {
  console.log(`${side.root}: ns per request (2 lines): ${side.results.map((r) => r.toFixed(0)).join(' ')}; median ${med(side.results).toFixed(0)}`);
}
console.log(`pending ${pending}`);
