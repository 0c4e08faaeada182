// verifyPublic on lines built here: a checkpoint vouches only for the chain (replica) it names.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkpointKeyFrom, verifyPublic } from '../../src/audit/checkpoints/index.ts';
import { signCheckpoint } from '../../src/audit/checkpoints/record.ts';
import { GENESIS_HASH, type AuditEvent } from '../../src/audit/index.ts';
import { sealLine, serializeEvent } from '../../src/audit/record.ts';

function chain(replica: string, n: number): { lines: string[]; hashes: string[] } {
  const lines: string[] = [];
  const hashes: string[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const event: AuditEvent = {
      ts: new Date(0).toISOString(),
      id: `e${i}`,
      agent: null,
      grant: null,
      decision: 'deny',
      code: 'bad_request',
      method: 'CONNECT',
      host: 'x',
      port: 1,
      path: null,
      status: 400,
      duration_ms: 1,
      refreshed: false,
      client: '127.0.0.1',
    };
    const sealed = sealLine(serializeEvent(event, replica), i, prev);
    lines.push(sealed.line.trimEnd());
    hashes.push(sealed.hash);
    prev = sealed.hash;
  }
  return { lines, hashes };
}

const sourced = (texts: string[]) => texts.map((text, i) => ({ text, line: i + 1 }));

describe('public verify and replicas', () => {
  const key = checkpointKeyFrom(randomBytes(32));
  const ra = chain('ra', 3);

  it("takes the chain's own checkpoint", async () => {
    const own = JSON.stringify(signCheckpoint({ seq: 3, hash: ra.hashes[2]! }, key, new Date().toISOString(), 'ra'));
    expect(await verifyPublic(sourced(ra.lines), sourced([own]), key.publicKey)).toMatchObject({ ok: true, covered_to: 3 });
  });

  it('refuses a checkpoint signed for another replica, even on the same seq and hash (replicas share the key)', async () => {
    const other = JSON.stringify(signCheckpoint({ seq: 3, hash: ra.hashes[2]! }, key, new Date().toISOString(), 'rb'));
    const result = await verifyPublic(sourced(ra.lines), sourced([other]), key.publicKey);
    expect(result.ok).toBe(false);
    expect(result.problems[0]!.reason).toMatch(/signed for the chain of replica rb, not ra/);
  });
});
