// An injected request's two audit lines (write-ahead, then outcome), as verify reads them
// (src/audit/chain.ts), and as people read them (src/audit/read/requests.ts).
import { describe, expect, it } from 'vitest';
import { ChainChecker } from '../../src/audit/chain.ts';
import { type AuditEvent, type AuditLine, GENESIS_HASH, sealLine, serializeEvent } from '../../src/audit/record.ts';
import { linesPerRequest, withoutWriteAhead } from '../../src/audit/read/requests.ts';
import { injectEvent } from '../helpers/audit-events.ts';

const event = (id: string, extra: Partial<AuditEvent> = {}): AuditEvent => ({ ...injectEvent(0), id, ...extra });
const sent = (id: string, extra: Partial<AuditEvent> = {}) => event(id, { status: null, phase: 'sent', ...extra });

/** The events sealed into a chain, as the writer would append them. */
function chain(events: AuditEvent[]): string[] {
  let prev = GENESIS_HASH;
  return events.map((e, i) => {
    const sealed = sealLine(serializeEvent(e), i + 1, prev);
    prev = sealed.hash;
    return sealed.line.trimEnd();
  });
}

function check(events: AuditEvent[]): ChainChecker {
  const checker = new ChainChecker();
  for (const [i, text] of chain(events).entries()) checker.feed(text, i + 1);
  return checker;
}

async function collect(lines: AsyncIterable<AuditLine>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(`${line.id}${line.phase === 'sent' ? ' sent' : ''}`);
  return out;
}

async function* parsed(events: AuditEvent[], reverse = false): AsyncGenerator<AuditLine> {
  const lines = chain(events).map((t) => JSON.parse(t) as AuditLine);
  yield* reverse ? lines.reverse() : lines;
}

describe('write-ahead pairs', () => {
  it('verify: pairs that agree pass, and a request left without its outcome is counted, not a problem', () => {
    const checker = check([sent('a'), sent('b'), event('a'), event('x', { decision: 'deny', code: 'policy_denied', status: 403 })]);
    expect(checker.problems).toEqual([]);
    expect(checker.unanswered).toBe(1);
  });

  it('verify: an outcome naming another request than its write-ahead line, or a second write-ahead line, is a problem', () => {
    expect(check([sent('a'), event('a', { path: '/admin' })]).problems.map((p) => p.reason)).toEqual([
      expect.stringContaining('the outcome of the request sent at seq 1 names another request'),
    ]);
    expect(check([sent('a'), sent('a')]).problems.map((p) => p.reason)).toEqual([expect.stringContaining('a second write-ahead line')]);
  });

  it('readers: one entry per request oldest first, an unanswered one shown as sent; newest-first pages without sent lines', async () => {
    const events = [sent('a'), sent('b'), event('a'), event('c')];
    expect(await collect(linesPerRequest(parsed(events)))).toEqual(['a', 'c', 'b sent']);
    // Pages read newest first leave every write-ahead line out (a page cannot see an earlier page's outcomes).
    expect(await collect(withoutWriteAhead(parsed(events, true)))).toEqual(['c', 'a']);
  });
});
