// Run as its own process by test/integration/audit-faults.test.ts: an AuditWriter whose process
// gets a file-size limit (RLIMIT_FSIZE) 10 bytes past the log's end, so the next append is cut
// part-way, then the limit is lifted. Prints what it saw as one JSON line.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { AuditWriter } from '../../src/audit/index.ts';
import { injectEvent } from './audit-events.ts';

const env = process.env;
const event = injectEvent;
const limit = (value: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${value}`]);

const writer = await AuditWriter.open({ path: env['AUDIT_PATH']!, headPath: env['HEAD_PATH']!, headKey: Buffer.from(env['HEAD_KEY']!, 'base64') });
await writer.write(event(1));
limit(`${statSync(env['AUDIT_PATH']!).size + 10}:unlimited`);
let failed = 'nothing';
await writer.write(event(2)).catch((err: { code?: string }) => (failed = err.code ?? 'unknown'));
const healthyDuring = writer.healthy;
limit('unlimited:unlimited');
for (let i = 0; i < 400 && !writer.healthy; i++) await new Promise((r) => setTimeout(r, 5));
const healthyAfter = writer.healthy;
await writer.write(event(3));
await writer.close();
process.stdout.write(`${JSON.stringify({ failed, healthyDuring, healthyAfter })}\n`);
