// Audit lines a key change owes (credentials/store/owed-key-lines.ts, written by app/owed-key-lines.ts):
// the same change noted twice is one line; writers opening the log together write each line once and
// never fail on each other's clean-up; a writer killed at any step leaves its line written once by the
// next (issue 86), found in the log by the id it recorded before writing; a line the log refuses stays
// with the writer that keeps it, and is finished once that writer is gone.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeOwedKeyLines } from '../../src/app/owed-key-lines.ts';
import type { LineFinder } from '../../src/audit/read/find-ids.ts';
import type { AuditEvent } from '../../src/audit/index.ts';
import { keyLinesOwed, oweKeyLine } from '../../src/credentials/store/owed-key-lines.ts';

const rotate = { action: 'key.rotate', changed: 'master_key', message: 'a rotation cut short was finished when the store was next opened' } as const;
const MODULE = fileURLToPath(new URL('../../src/app/owed-key-lines.ts', import.meta.url));

interface Collector {
  lines: AuditEvent[];
  write(event: AuditEvent): Promise<void>;
  find: LineFinder;
}

function collector(lines: AuditEvent[] = []): Collector {
  return { lines, write: async (event) => void lines.push(event), find: async (ids) => lines.some((l) => ids.includes(l.id)) };
}

/** An audit log as a file of JSON lines, shared with a child process. */
function fileLog(path: string): Collector {
  const read = (): AuditEvent[] =>
    existsSync(path)
      ? readFileSync(path, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as AuditEvent)
      : [];
  return {
    get lines() {
      return read();
    },
    write: async (event) => appendFileSync(path, `${JSON.stringify(event)}\n`),
    find: async (ids) => read().some((l) => ids.includes(l.id)),
  };
}

/**
 * A writer in a process of its own, appending to `logPath`: `kill` ends it with SIGKILL at that
 * step (after its line, before the note goes; or before its line); `refuse` has its log refuse.
 */
async function childWriter(dataDir: string, logPath: string, how: 'after-line' | 'before-line' | 'refuse'): Promise<void> {
  const script = `import { appendFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const how = ${JSON.stringify(how)};
if (how === 'after-line') {
  const unlink = fsp.unlink;
  fsp.unlink = async (path, ...rest) => { if (String(path).includes('.claimed-')) process.kill(process.pid, 'SIGKILL'); return unlink(path, ...rest); };
  syncBuiltinESMExports();
}
const { writeOwedKeyLines } = await import(${JSON.stringify(MODULE)});
const log = { write: async (event) => {
  if (how === 'before-line') process.kill(process.pid, 'SIGKILL');
  if (how === 'refuse') throw new Error('disk full');
  appendFileSync(${JSON.stringify(logPath)}, JSON.stringify(event) + '\\n');
} };
await writeOwedKeyLines(log, ${JSON.stringify(dataDir)}, async () => false).catch(() => undefined);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const signal = await new Promise((resolve) => child.once('close', (_code, s) => resolve(s)));
  expect(signal, stderr).toBe(how === 'refuse' ? null : 'SIGKILL');
}

const newDataDir = () => mkdtempSync(join(tmpdir(), 'keyway-owed-'));

describe('audit lines a key change owes', () => {
  it('one change noted twice (a promotion retried after a crash) is one line, written with its fields; then nothing is owed', async () => {
    const dataDir = newDataDir();
    await oweKeyLine(dataDir, rotate, 'the pending key file');
    await oweKeyLine(dataDir, rotate, 'the pending key file');
    await oweKeyLine(dataDir, { action: 'key.rewrap', changed: 'store.key', actor: 'ops@host' }, 'a wrapped key');
    const log = collector();
    expect(await writeOwedKeyLines(log, dataDir, log.find)).toBe(2);
    expect(log.lines.map((l) => [l.action, l.client, l.actor])).toEqual(
      expect.arrayContaining([
        ['key.rotate', 'keyway', undefined],
        ['key.rewrap', 'cli', 'ops@host'],
      ]),
    );
    expect(log.lines.find((l) => l.action === 'key.rotate')).toMatchObject({
      decision: 'admin',
      changed: 'master_key',
      message: expect.stringMatching(/^a rotation cut short/),
    });
    expect(keyLinesOwed(dataDir)).toBe(false);
    expect(await writeOwedKeyLines(log, dataDir, log.find)).toBe(0);
  });

  it('writers opening the log together: each line written once, none fails on the others clearing up', async () => {
    for (let round = 0; round < 20; round++) {
      const dataDir = newDataDir();
      for (let i = 0; i < 4; i++) await oweKeyLine(dataDir, rotate, `change ${i}`);
      const shared: AuditEvent[] = [];
      const logs = [collector(shared), collector(shared), collector(shared)];
      const noteMore = (async () => {
        for (let i = 4; i < 8; i++) await oweKeyLine(dataDir, rotate, `change ${i}`);
      })();
      await Promise.all([...logs.map((log) => writeOwedKeyLines(log, dataDir, log.find)), noteMore]);
      const last = collector(shared);
      await writeOwedKeyLines(last, dataDir, last.find);
      expect(shared).toHaveLength(8);
      expect(keyLinesOwed(dataDir)).toBe(false);
    }
  });

  it('a writer killed after its line, before removing the note: the next writer finds the line and writes nothing', async () => {
    const dataDir = newDataDir();
    const log = fileLog(join(dataDir, 'audit.jsonl'));
    await oweKeyLine(dataDir, { action: 'key.rewrap', changed: 'store.key', actor: 'ops@host' }, 'a wrapped key');
    await childWriter(dataDir, join(dataDir, 'audit.jsonl'), 'after-line');
    expect(log.lines).toHaveLength(1);
    expect(readdirSync(join(dataDir, 'key-lines-owed'))).toEqual([expect.stringMatching(/\.claimed-/)]);
    // At once: the claimant is gone (not a minute later).
    expect(await writeOwedKeyLines(log, dataDir, log.find)).toBe(1);
    expect(log.lines).toHaveLength(1);
    expect(keyLinesOwed(dataDir)).toBe(false);
  });

  it('a writer killed before its line, its id recorded: the next writer writes it, once', async () => {
    const dataDir = newDataDir();
    const log = fileLog(join(dataDir, 'audit.jsonl'));
    await oweKeyLine(dataDir, rotate, 'a change');
    await childWriter(dataDir, join(dataDir, 'audit.jsonl'), 'before-line');
    expect(log.lines).toHaveLength(0);
    expect(await writeOwedKeyLines(log, dataDir, log.find)).toBe(1);
    expect(log.lines).toHaveLength(1);
    expect(keyLinesOwed(dataDir)).toBe(false);
  });

  it('a line the log refuses stays with its writer (whose audit writer keeps it), and is finished once that writer is gone', async () => {
    const dataDir = newDataDir();
    await oweKeyLine(dataDir, rotate, 'a change');
    // In this (live) process: the note stays claimed by it, and no other writer takes it meanwhile.
    const refusing = { write: async () => Promise.reject(new Error('disk full')) };
    await expect(writeOwedKeyLines(refusing, dataDir, async () => false)).rejects.toThrow('disk full');
    const other = collector();
    expect(await writeOwedKeyLines(other, dataDir, other.find)).toBe(0);
    expect(other.lines).toHaveLength(0);
    // In a process that is gone: the next writer writes it.
    const elsewhere = newDataDir();
    await oweKeyLine(elsewhere, rotate, 'a change');
    await childWriter(elsewhere, join(elsewhere, 'audit.jsonl'), 'refuse');
    const log = collector();
    expect(await writeOwedKeyLines(log, elsewhere, log.find)).toBe(1);
    expect(log.lines).toHaveLength(1);
    expect(existsSync(join(elsewhere, 'key-lines-owed'))).toBe(false);
  });
});
