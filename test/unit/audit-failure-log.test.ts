// Audit writes failing are said at a bounded rate (issue 60: one error line per refused request while
// the audit database was down): one error, a count per interval, one line on recovery.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditFailureLog } from '../../src/audit/failure-log.ts';

interface Said {
  level: 'error' | 'warn' | 'info';
  fields: Record<string, unknown>;
  message: string;
}

function capture(): { said: Said[]; logger: ConstructorParameters<typeof AuditFailureLog>[0] } {
  const said: Said[] = [];
  const at = (level: Said['level']) => (fields: object, message: string) => void said.push({ level, fields: fields as Record<string, unknown>, message });
  return { said, logger: { error: at('error'), warn: at('warn'), info: at('info') } };
}

const down = Object.assign(new Error('the audit table could not be written (connection refused)'), { cause: { code: 'ECONNREFUSED' } });

describe('AuditFailureLog', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('says the first failure, then one count per interval, then the recovery with the total', () => {
    const { said, logger } = capture();
    const log = new AuditFailureLog(logger, 10_000);
    log.rejected(down, 1);
    for (let i = 0; i < 500; i++) log.rejected(down, 1);
    expect(said.map((s) => s.level)).toEqual(['error']);
    expect(said[0]!.fields).toMatchObject({ err: { code: 'ECONNREFUSED' }, lines: 1 });
    vi.advanceTimersByTime(10_000);
    expect(said.map((s) => s.level)).toEqual(['error', 'warn']);
    expect(said[1]!.fields).toMatchObject({ lines: 500 });
    // A quiet interval says nothing.
    vi.advanceTimersByTime(30_000);
    expect(said).toHaveLength(2);
    log.rejected(down, 3);
    log.recovered();
    expect(said.map((s) => s.level)).toEqual(['error', 'warn', 'info']);
    expect(said[2]!.fields).toMatchObject({ lines: 504 });
    // Recovered: no more summaries; a new fault starts over with one error.
    vi.advanceTimersByTime(60_000);
    expect(said).toHaveLength(3);
    log.rejected(down, 2);
    expect(said.map((s) => s.level)).toEqual(['error', 'warn', 'info', 'error']);
    log.close();
  });

  it('says nothing of writes refused after close, and a recovery with no failure is silent', () => {
    const { said, logger } = capture();
    const log = new AuditFailureLog(logger);
    log.recovered();
    log.close();
    log.rejected(down, 5);
    expect(said).toEqual([]);
  });
});
