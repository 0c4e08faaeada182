// A write-ahead hold keeps the audit log's file open across batches (src/audit/file/append-now.ts).
// If the file or its folder is moved, replaced or removed meanwhile, a batch written to the held
// descriptor would land where no reader of the log looks, and its request would go out on it. Each
// held batch checks the log's path first; these tests move things between two batches of one hold,
// in the same synchronous step, so no watch or event can have run in between.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogFiles } from '../../src/audit/file/log-files.ts';
import { prunedPathFor } from '../../src/audit/pruned.ts';

const open: LogFiles[] = [];
afterEach(() => {
  for (const files of open.splice(0)) files.endHold();
});

async function heldLog(): Promise<{ files: LogFiles; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-held-path-'));
  const path = join(dir, 'logs', 'audit.jsonl');
  const headPath = join(dir, 'data', 'audit-head.json');
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(headPath), { recursive: true, mode: 0o700 });
  const files = new LogFiles({
    path,
    headPath,
    headKey: randomBytes(32),
    maxBytes: 0,
    keep: 10,
    minRetentionMs: 0,
    prunedPath: prunedPathFor(headPath),
    recoveredBody: () => '{"action":"audit.recovered"}',
  });
  open.push(files);
  await files.settle();
  // A batch a request waits on (urgent) takes the hold.
  await files.appendUnderLock([line('first')], false, true);
  expect(files.holding).toBe(true);
  return { files, path };
}

const line = (id: string) => `{"id":"${id}"}`;
const ids = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter((text) => text !== '')
    .map((text) => (JSON.parse(text) as { id?: string }).id);

describe('a write-ahead batch under a hold', () => {
  it('goes to the file at the log path, not to the held one moved aside', async () => {
    const { files, path } = await heldLog();
    renameSync(path, `${path}.aside`);
    await files.appendUnderLock([line('second')], false, true);
    expect(ids(`${path}.aside`)).toEqual(['first']);
    expect(ids(path)).toContain('second');
  });

  it('goes to the file at the log path, not to the held one, when another file was put in its place', async () => {
    const { files, path } = await heldLog();
    renameSync(path, `${path}.aside`);
    writeFileSync(path, '', { mode: 0o600 });
    await files.appendUnderLock([line('second')], false, true);
    expect(ids(`${path}.aside`)).toEqual(['first']);
    expect(ids(path)).toContain('second');
  });

  it('fails, writing nowhere, when the folder was replaced by a file', async () => {
    const { files, path } = await heldLog();
    const logs = dirname(path);
    renameSync(logs, `${logs}.aside`);
    writeFileSync(logs, 'not a folder');
    await expect(files.appendUnderLock([line('second')], false, true)).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(ids(join(`${logs}.aside`, 'audit.jsonl'))).toEqual(['first']);
    expect(readFileSync(logs, 'utf8')).toBe('not a folder');
  });

  it('still appends to the held file while nothing moved', async () => {
    const { files, path } = await heldLog();
    await files.appendUnderLock([line('second')], false, true);
    expect(files.holding).toBe(true);
    expect(ids(path)).toEqual(['first', 'second']);
  });
});
