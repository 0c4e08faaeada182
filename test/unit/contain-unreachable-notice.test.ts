import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { UnreachableNotice } from '../../src/contain/unreachable-notice.ts';
import { injectEvent } from '../helpers/audit-events.ts';

// What keyway run --contain says on its stderr of a host keyway could not reach for the command
// (contain/unreachable-notice.ts): one line per host a minute, from the audit line's own words.

function failed(host: string, message: string | undefined, extra: Partial<AuditEvent> = {}): AuditEvent {
  return { ...injectEvent(0), host, decision: 'error', code: 'upstream_unreachable', status: 502, message, via: 'contain', ...extra };
}

describe('UnreachableNotice', () => {
  let now = 0;
  const said: string[] = [];
  const notice = new UnreachableNotice(
    (line) => said.push(line),
    () => now,
  );

  it('says the first failure for a host, naming it and why, without repeating the authority', () => {
    notice.add(failed('api.example.test', 'api.example.test:443: connection refused'));
    expect(said).toEqual(['keyway: upstream_unreachable: keyway could not reach api.example.test:443 for the command: connection refused']);
  });

  it('holds the same host for a minute, then says how many it held; another host is said at once', () => {
    said.length = 0;
    now += 10_000;
    notice.add(failed('api.example.test', 'api.example.test:443: connection refused'));
    notice.add(failed('api.example.test', 'api.example.test:443: connection refused'));
    notice.add(failed('other.invalid', 'cannot resolve other.invalid'));
    expect(said).toEqual(['keyway: upstream_unreachable: keyway could not reach other.invalid:443 for the command: cannot resolve other.invalid']);
    now += 60_000;
    notice.add(failed('api.example.test', 'api.example.test:443: host unreachable'));
    expect(said.at(-1)).toBe(
      'keyway: upstream_unreachable: keyway could not reach api.example.test:443 for the command: host unreachable (2 more since the last line)',
    );
  });

  it('says nothing of other lines: another code, a success, a write-ahead line', () => {
    said.length = 0;
    now += 120_000;
    notice.add(failed('a.example.test', 'a.example.test:443: nope', { code: 'host_not_allowed', decision: 'deny' }));
    notice.add(injectEvent(1));
    notice.add(failed('b.example.test', 'b.example.test:443: connection refused', { phase: 'sent' }));
    expect(said).toEqual([]);
  });

  it('shows a control character in what it repeats escaped, never raw (no line forged on the terminal)', () => {
    said.length = 0;
    notice.add(failed('c.example.test', 'c.example.test:443: bad\n\x1b[2Kkeyway: all fine'));
    notice.add(failed('d.example.test', undefined));
    expect(said).toEqual([
      'keyway: upstream_unreachable: keyway could not reach c.example.test:443 for the command: bad\\n\\x1b[2Kkeyway: all fine',
      'keyway: upstream_unreachable: keyway could not reach d.example.test:443 for the command',
    ]);
  });
});
