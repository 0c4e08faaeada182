// verifyPublic on lines built here: a checkpoint vouches only for the chain (replica) it names.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exportBundle, type ChainSource } from '../../src/audit/checkpoints/bundle.ts';
import { checkpointKeyFrom, verifyPublic } from '../../src/audit/checkpoints/index.ts';
import { signCheckpoint } from '../../src/audit/checkpoints/record.ts';
import { ChainChecker } from '../../src/audit/chain.ts';
import { GENESIS_HASH, type AuditEvent } from '../../src/audit/index.ts';
import { sealLine, serializeEvent } from '../../src/audit/record.ts';

function chain(replica: string, n: number, lastCode: AuditEvent['code'] = 'bad_request'): { lines: string[]; hashes: string[] } {
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
      code: i === n ? lastCode : 'bad_request',
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

describe('export signs only the line its master-key verify walked', () => {
  const key = checkpointKeyFrom(randomBytes(32));
  const window = { since: new Date(0), until: new Date(1000) };
  // The log as the verify walks it (what the head file vouches for).
  const original = chain('ra', 3);
  const verifyWhole = async (pin: number) => {
    const checker = new ChainChecker({ pin });
    for (const [i, text] of original.lines.entries()) checker.feed(text, i + 1);
    const pinned = checker.pinned;
    return { ok: checker.problems.length === 0, problems: checker.problems, ...(pinned === undefined ? {} : { pinned }) };
  };
  const source = (lines: string[], added: string[]): ChainSource => ({
    lines: async function* () {
      yield* lines;
    },
    checkpoints: async () => [],
    add: async (_checkpoint, line) => {
      added.push(line);
    },
  });

  it('signs the newest line when the lines read are the lines verified', async () => {
    const added: string[] = [];
    const result = await exportBundle({ chain: source(original.lines, added), key, ...window, verifyWhole, replica: 'ra' });
    expect(result).toMatchObject({ ok: true, signed: true });
    expect(added).toHaveLength(1);
    expect(JSON.parse(added[0]!)).toMatchObject({ seq: 3, hash: original.hashes[2] });
  });

  it('refuses when the file read differs from the one verified (changed in between, then put back)', async () => {
    // Its last line rewritten, its hash recomputed: it links, but it is not the line the verify saw.
    const changed = chain('ra', 3, 'policy_denied');
    expect(changed.hashes[2]).not.toBe(original.hashes[2]);
    const added: string[] = [];
    const result = await exportBundle({ chain: source(changed.lines, added), key, ...window, verifyWhole, replica: 'ra' });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/seq 3 as exported is not the line the verify walked/) });
    expect(added).toEqual([]);
  });
});
