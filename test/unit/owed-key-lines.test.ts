// Audit lines a key change owes (credentials/store/owed-key-lines.ts, written by app/owed-key-lines.ts):
// the same change noted twice is one line; writers opening the log together write each line once and
// never fail on each other's clean-up; a line the log refuses stays owed for the next writer.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeOwedKeyLines } from '../../src/app/owed-key-lines.ts';
import type { AuditEvent } from '../../src/audit/index.ts';
import { keyLinesOwed, oweKeyLine } from '../../src/credentials/store/owed-key-lines.ts';

const rotate = { action: 'key.rotate', changed: 'master_key', message: 'a rotation cut short was finished when the store was next opened' } as const;

function collector(): { lines: AuditEvent[]; write(event: AuditEvent): Promise<void> } {
  const lines: AuditEvent[] = [];
  return { lines, write: async (event) => void lines.push(event) };
}

describe('audit lines a key change owes', () => {
  it('one change noted twice (a promotion retried after a crash) is one line, written with its fields; then nothing is owed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keyway-owed-'));
    await oweKeyLine(dataDir, rotate, 'the pending key file');
    await oweKeyLine(dataDir, rotate, 'the pending key file');
    await oweKeyLine(dataDir, { action: 'key.rewrap', changed: 'store.key', actor: 'ops@host' }, 'a wrapped key');
    const log = collector();
    expect(await writeOwedKeyLines(log, dataDir)).toBe(2);
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
    expect(await writeOwedKeyLines(log, dataDir)).toBe(0);
  });

  it('writers opening the log together: each line written once, none fails on the others clearing up', async () => {
    for (let round = 0; round < 20; round++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'keyway-owed-'));
      for (let i = 0; i < 4; i++) await oweKeyLine(dataDir, rotate, `change ${i}`);
      const logs = [collector(), collector(), collector()];
      const noteMore = (async () => {
        for (let i = 4; i < 8; i++) await oweKeyLine(dataDir, rotate, `change ${i}`);
      })();
      await Promise.all([...logs.map((log) => writeOwedKeyLines(log, dataDir)), noteMore]);
      const last = collector();
      await writeOwedKeyLines(last, dataDir);
      expect([...logs, last].reduce((n, log) => n + log.lines.length, 0)).toBe(8);
      expect(keyLinesOwed(dataDir)).toBe(false);
    }
  });

  it('a line the log refuses is given back, owed to the next writer', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keyway-owed-'));
    await oweKeyLine(dataDir, rotate, 'a change');
    const refusing = { write: async () => Promise.reject(new Error('disk full')) };
    await expect(writeOwedKeyLines(refusing, dataDir)).rejects.toThrow('disk full');
    expect(readdirSync(join(dataDir, 'key-lines-owed')).filter((n) => n.endsWith('.json'))).toHaveLength(1);
    const log = collector();
    expect(await writeOwedKeyLines(log, dataDir)).toBe(1);
    expect(existsSync(join(dataDir, 'key-lines-owed'))).toBe(false);
  });
});
