import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rotatedPath, tailAudit } from '../../src/audit/index.ts';

// Every audit file tailAudit opens is closed again on every path: a FileHandle left to the garbage
// collector makes Node print "Closing file descriptor N on garbage collection" on stderr, which once
// broke a `keyway doctor` run (doctor stops reading the tail at its first match). Checked by listing
// this process's open descriptors (Linux /proc) and looking for the test's own files.

let dir: string;
let logPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-audit-handles-'));
  logPath = join(dir, 'logs', 'audit.jsonl');
  await mkdir(join(dir, 'logs'));
  // Lines as tailAudit parses them; the hash chain is not checked when reading for people.
  const line = (seq: number) =>
    JSON.stringify({
      ts: new Date().toISOString(),
      id: `req-${seq - 1}`,
      decision: 'inject',
      host: 'api.github.com',
      port: 443,
      seq,
      prev: '0'.repeat(64),
      hash: '1'.repeat(64),
    });
  await writeFile(logPath, [1, 2, 3, 4, 5].map((seq) => `${line(seq)}\n`).join(''));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Paths under the test folder that this process holds open. */
function openUnderDir(): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the readlink (the listing's own descriptor)
    }
    if (target.startsWith(dir)) held.push(target);
  }
  return held;
}

describe('tailAudit closes the files it opens', () => {
  it('when the consumer stops at the first line (for await ... return)', async () => {
    const firstId = async (): Promise<string | undefined> => {
      for await (const line of tailAudit(logPath, { lines: 200, follow: false })) return line.id;
      return undefined;
    };
    for (let i = 0; i < 10; i++) expect(await firstId()).toBe('req-0');
    expect(openUnderDir()).toEqual([]);
  });

  it('when the consumer breaks out while following', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const line of tailAudit(logPath, { lines: 2, follow: true, intervalMs: 10, signal: controller.signal })) {
      seen.push(line.id);
      // Held open while following: the descriptor is there before the break.
      expect(openUnderDir()).toEqual([logPath]);
      if (seen.length === 2) break;
    }
    controller.abort();
    expect(seen).toEqual(['req-3', 'req-4']);
    expect(openUnderDir()).toEqual([]);
  });

  it('when reading the rotated files fails after the live file was opened', async () => {
    // A folder where a rotated file should be: the live file has fewer lines than asked for, so the
    // tail goes on to it after opening the live file, and reading it fails (EISDIR).
    await mkdir(rotatedPath(logPath, 1));
    const consume = async () => {
      for await (const line of tailAudit(logPath, { lines: 200, follow: false })) void line;
    };
    await expect(consume()).rejects.toThrow();
    expect(openUnderDir()).toEqual([]);
  });
});
