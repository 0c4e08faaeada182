// Run as its own process by test/integration/audit-faults.test.ts: an AuditWriter whose process gets
// a file-size limit (RLIMIT_FSIZE) 256 KiB past the log's end: room for lines, but less than the
// writer keeps in reserve. The writer must turn unhealthy and refuse reservations BEFORE any append
// fails, still write the lines it already promised, then recover when the limit is lifted.
// Prints what it saw as one JSON line.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { AuditWriter } from '../../src/audit/index.ts';
import { injectEvent } from './audit-events.ts';

const env = process.env;
const event = injectEvent;
const limit = (value: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${value}`]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const writer = await AuditWriter.open({ path: env['AUDIT_PATH']!, headPath: env['HEAD_PATH']!, headKey: Buffer.from(env['HEAD_KEY']!, 'base64') });
const reservedBefore = writer.reserveLine();
await writer.write(event(1), reservedBefore);
// A request admitted before the limit: its line must still land.
const inFlight = writer.reserveLine();
limit(`${statSync(env['AUDIT_PATH']!).size + 256 * 1024}:unlimited`);
let waitedMs = 0;
for (; waitedMs < 2_000 && writer.healthy; waitedMs += 5) await sleep(5);
const healthyDuring = writer.healthy;
const reservedDuring = writer.reserveLine();
const failures: string[] = [];
await writer.write(event(2), inFlight).catch((err: { code?: string }) => failures.push(err.code ?? 'unknown'));
// A refusal's line (nothing reserved) fits in the room that is left.
await writer
  .write({ ...event(3), decision: 'error', code: 'audit_unavailable', status: 503 })
  .catch((err: { code?: string }) => failures.push(err.code ?? 'unknown'));
const healthyAfterWrites = writer.healthy;
limit('unlimited:unlimited');
for (let i = 0; i < 400 && !writer.healthy; i++) await sleep(5);
const healthyAfter = writer.healthy;
const reservedAfter = writer.reserveLine();
await writer.write(event(4), reservedAfter);
await writer.close();
process.stdout.write(
  `${JSON.stringify({ reservedBefore, inFlight, healthyDuring, reservedDuring, failures, healthyAfterWrites, healthyAfter, reservedAfter, waitedMs, dropped: writer.droppedLines })}\n`,
);
