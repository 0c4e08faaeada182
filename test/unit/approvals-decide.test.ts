// What a person's answer does to an approval, and what a yes covers afterwards (approvals/decide.ts).
import { describe, expect, it } from 'vitest';
import { decideApproval, EMPTY_SHA256, onceFor, windowCovers } from '../../src/approvals/decide.ts';
import type { ApprovalRecord } from '../../src/approvals/record.ts';

const NOW = new Date('2026-11-24T10:00:00Z');
const later = (ms: number) => new Date(NOW.getTime() + ms);

function pending(over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: 'ap_aaaaaaaaaaaa',
    state: 'pending',
    agent: 'bot',
    grant: 'gh',
    rule: 'agents.bot.rules[1] (POST /repos/** approve: human)',
    method: 'POST',
    host: 'api.example.test',
    port: 443,
    path: '/repos/acme/merges',
    purpose: null,
    body: null,
    asked_at: NOW.toISOString(),
    expires_at: later(120_000).toISOString(),
    holder: null,
    window_ms: 0,
    patterns: ['/repos/**'],
    ...over,
  };
}

const asked = (over: Partial<Parameters<typeof decideApproval>[2]> = {}) => ({ approve: true, by: 'alice@host', now: NOW, ...over });
const request = { agent: 'bot', grant: 'gh', method: 'POST', host: 'api.example.test', port: 443, path: '/repos/acme/merges' };

describe('answering an approval', () => {
  it('approves once by default, for the rule window when it has one, or for --for', () => {
    expect(decideApproval('x', pending(), asked())).toMatchObject({ ok: true, record: { state: 'approved', decision: { outcome: 'once', by: 'alice@host' } } });
    const ruled = decideApproval('x', pending({ window_ms: 900_000 }), asked());
    expect(ruled).toMatchObject({ ok: true, record: { decision: { outcome: 'window', until: later(900_000).toISOString() } } });
    const given = decideApproval('x', pending(), asked({ forMs: 60_000 }));
    expect(given).toMatchObject({ ok: true, record: { decision: { outcome: 'window', until: later(60_000).toISOString() } } });
  });

  it('refuses a window over 24h, --pattern without a window, and any answer to what is not pending', () => {
    expect(decideApproval('x', pending(), asked({ forMs: 25 * 3_600_000 }))).toMatchObject({ ok: false, code: 'usage' });
    expect(decideApproval('x', pending(), asked({ pattern: true }))).toMatchObject({ ok: false, code: 'usage' });
    expect(decideApproval('x', undefined, asked())).toMatchObject({ ok: false, code: 'not_found' });
    expect(decideApproval('x', pending({ state: 'denied' }), asked())).toMatchObject({ ok: false, code: 'conflict' });
    // Past its deadline it reads as expired, whether or not the sweep has written it so.
    expect(decideApproval('x', pending(), asked({ now: later(120_001) }))).toMatchObject({
      ok: false,
      code: 'conflict',
      message: expect.stringContaining('expired'),
    });
  });

  it("keeps a deny's reason to one bounded line", () => {
    const denied = decideApproval('x', pending(), asked({ approve: false, reason: `no\n\u001b[31mfake line\r${'x'.repeat(300)}` }));
    expect(denied.ok).toBe(true);
    const reason = denied.ok ? denied.record.decision!.reason! : '';
    for (const control of ['\n', '\r', '\u001b']) expect(reason).not.toContain(control);
    expect(reason.length).toBeLessThanOrEqual(201);
  });
});

describe('what a yes covers', () => {
  const window = (over: Partial<ApprovalRecord> = {}, pattern = false) =>
    pending({
      state: 'approved',
      decision: { outcome: 'window', by: 'a', at: NOW.toISOString(), until: later(600_000).toISOString(), ...(pattern ? { pattern } : {}) },
      ...over,
    });

  it('a window: the same agent, grant, method and exact path, until it ends', () => {
    expect(windowCovers(window(), request, NOW)).toBe(true);
    expect(windowCovers(window(), { ...request, method: 'post' }, NOW)).toBe(true);
    for (const other of [
      { agent: 'eve' },
      { grant: 'other' },
      { method: 'DELETE' },
      { host: 'other.example.test' },
      { port: 8443 },
      { path: '/repos/acme/merges/1' },
      { path: '/repos/acme/Merges' },
    ]) {
      expect(windowCovers(window(), { ...request, ...other }, NOW), JSON.stringify(other)).toBe(false);
    }
    expect(windowCovers(window(), request, later(600_000))).toBe(false);
    expect(windowCovers(pending({ state: 'denied' }), request, NOW)).toBe(false);
  });

  it('widened with --pattern: any path the rule allows, read as an allow rule reads it', () => {
    expect(windowCovers(window({}, true), { ...request, path: '/repos/other/thing' }, NOW)).toBe(true);
    expect(windowCovers(window({}, true), { ...request, path: '/orgs/acme' }, NOW)).toBe(false);
    // An encoded slash is read both ways: /repos%2F.. must match under every reading.
    expect(windowCovers(window({ patterns: ['/repos/*/merges'] }, true), { ...request, path: '/repos/a%2Fb/merges' }, NOW)).toBe(false);
    expect(windowCovers(window({ patterns: null }, true), { ...request, path: '/anything' }, NOW)).toBe(true);
  });

  it('never covers a request whose override headers name another method or path', () => {
    expect(windowCovers(window({}, true), { ...request, overrides: 'method DELETE' }, NOW)).toBe(false);
  });

  it('a yes for once, asked with wait: 0: spent by the same request with the same body only', () => {
    const once = pending({
      state: 'approved',
      decision: { outcome: 'once', by: 'a', at: NOW.toISOString() },
      body: { bytes: 2, type: null, sha256: 'ab'.repeat(32), preview: null },
    });
    expect(onceFor(once, request, 'ab'.repeat(32))).toBe(true);
    expect(onceFor(once, request, EMPTY_SHA256)).toBe(false);
    expect(onceFor(once, { ...request, path: '/repos/x/merges' }, 'ab'.repeat(32))).toBe(false);
    expect(onceFor(once, { ...request, overrides: 'method DELETE' }, 'ab'.repeat(32))).toBe(false);
    // Another host or port of the grant, another query: not the request approved.
    for (const other of [{ host: 'other.example.test' }, { port: 8443 }, { query: '?force=true' }])
      expect(onceFor(once, { ...request, ...other }, 'ab'.repeat(32)), JSON.stringify(other)).toBe(false);
    expect(onceFor(once, { ...request, query: '' }, 'ab'.repeat(32))).toBe(true);
    // A held request's yes is its own: never spent by another.
    expect(onceFor({ ...once, holder: { host: 'h', pid: 1, started_at: 'x' } }, request, 'ab'.repeat(32))).toBe(false);
  });
});

describe('what a yes covers for a delegated agent (issue 89)', () => {
  it('covers the same chain only: not the root agent, not a namesake minted under another parent', () => {
    const approved = (over: Partial<ApprovalRecord>) => decideApproval('x', pending(over), asked({ forMs: 60_000 })) as { record: ApprovalRecord };
    const child = approved({ agent: 'worker', chain: ['bot', 'worker'] }).record;
    const asChild = { ...request, agent: 'worker', chain: ['bot', 'worker'] };
    expect(windowCovers(child, asChild, NOW)).toBe(true);
    expect(windowCovers(child, { ...asChild, chain: ['other', 'worker'] }, NOW)).toBe(false);
    expect(windowCovers(child, { ...asChild, chain: undefined }, NOW)).toBe(false);
    const root = approved({}).record;
    expect(windowCovers(root, request, NOW)).toBe(true);
    expect(windowCovers(root, { ...request, chain: ['lead', 'bot'] }, NOW)).toBe(false);
    const once = decideApproval('x', pending({ agent: 'worker', chain: ['bot', 'worker'] }), asked()) as { record: ApprovalRecord };
    expect(onceFor(once.record, asChild, EMPTY_SHA256)).toBe(true);
    expect(onceFor(once.record, { ...asChild, chain: ['other', 'worker'] }, EMPTY_SHA256)).toBe(false);
  });
});
