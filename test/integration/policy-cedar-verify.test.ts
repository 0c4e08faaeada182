// `keyway audit verify` and the policy hash (issue 88): a line whose hash no earlier policy.load line
// loaded is reported, even on a chain that links (a writer that holds the key wrote it); lines from
// before any policy.load line (an older keyway's) pass.
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditWriter, verifyAudit } from '../../src/audit/index.ts';
import { adminEvent } from '../../src/audit/admin-event.ts';
import { requestLine } from '../helpers/audit-events.ts';

const hash = (c: string) => `sha256:${c.repeat(64)}`;

describe('audit verify checks each line policy hash', () => {
  it('passes loaded hashes and lines before any load, and names a line with a hash never loaded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyway-policy-verify-'));
    const opts = { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit.head'), headKey: randomBytes(32) };
    const writer = await AuditWriter.open(opts);
    await writer.write(requestLine('old-keyway')); // no hash: an older keyway
    await writer.write({ ...requestLine('before-any-load'), policy: hash('0') });
    await writer.write(adminEvent({ action: 'policy.load', client: 'keyway', policy: hash('a'), files: '' }));
    await writer.write({ ...requestLine('under-a'), policy: hash('a') });
    await writer.write({ ...requestLine('forged'), policy: hash('f') });
    await writer.write(adminEvent({ action: 'policy.load', client: 'keyway', policy: hash('b'), files: '/x.cedar' }));
    await writer.write({ ...requestLine('under-b'), policy: hash('b') });
    await writer.write({ ...requestLine('an-older-keyway-in-warn-mode'), policy: 'warn' });
    await writer.write({ ...requestLine('in-flight-under-a'), policy: hash('a') });
    await writer.close();

    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 5, reason: `policy ${hash('f')} was never loaded: no earlier policy.load line names it` }]);
  });
});
