// Refused Slack callbacks as audit lines (approvals/slack/refused.ts): the line names the reason and
// the clicker, never the payload; and a flood of them (anyone who reaches the callback URL can send
// refusals) is bounded: 20 lines per 10 s in full, the rest one summary line with `repeated`.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.ts';
import { RefusedCallbackLines, refusedCallbackEvent } from '../../src/approvals/slack/refused.ts';

describe('refused Slack callbacks, audited', () => {
  it('names the reason, the code, the clicker and where it came from; a user id not of Slack’s form is left out', () => {
    const at = new Date('2026-11-29T12:00:00Z');
    const event = refusedCallbackEvent(
      { code: 'conflict', reason: 'that button was for another body', user: 'U0ALICE', approval: 'ap_abcdefghijkm' },
      { kind: 'http', client: '203.0.113.7' },
      at,
    );
    expect(event).toMatchObject({
      decision: 'admin',
      action: 'slack.callback',
      code: 'conflict',
      actor: 'slack:U0ALICE',
      client: '203.0.113.7',
      path: '/slack/interactivity',
      message: 'ap_abcdefghijkm: that button was for another body',
    });
    const forged = refusedCallbackEvent({ code: 'bad_request', reason: 'no Slack user id', user: 'U0<script>' }, { kind: 'socket' }, at);
    expect(forged.actor).toBeUndefined();
    expect(forged).toMatchObject({ client: 'slack-socket-mode', path: null });
  });

  it('a flood: 20 lines in full per 10 s, then one summary line counting the rest', () => {
    let now = Date.parse('2026-11-29T12:00:00Z');
    const written: AuditEvent[] = [];
    const lines = new RefusedCallbackLines(
      async (e) => void written.push(e),
      () => new Date(now),
    );
    const refusal = () =>
      refusedCallbackEvent(
        { code: 'admin_auth_failed', reason: 'not a Slack callback: the signature does not match the body' },
        { kind: 'http', client: '198.51.100.9' },
        new Date(now),
      );
    for (let i = 0; i < 25; i++) {
      lines.add(refusal());
      now += 100;
    }
    expect(written).toHaveLength(20);
    now += 10_000;
    lines.add(refusal());
    expect(written).toHaveLength(22);
    expect(written[20]).toMatchObject({ repeated: 5, code: 'admin_auth_failed', action: 'slack.callback', path: null });
    expect(written[20]!.message).toContain('5 more refused Slack callbacks');
    expect(written[21]!.repeated).toBeUndefined();
    lines.flush();
    expect(written).toHaveLength(22);
  });
});
