// The config of approvals: a rule's approve/approval, and the approvals: section's bounds.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { thrownMessage } from '../helpers/thrown.ts';
import { compileRules, evaluate } from '../../src/policy/rules.ts';

const load = (rules: unknown[], extra: Record<string, unknown> = {}) =>
  parseConfig(
    { grants: { gh: { type: 'bearer', domains: ['api.example.test'], secret: 'env:X' } }, agents: { bot: { key: 'env:K', rules } }, ...extra },
    '/home/test',
  );

const refusal = thrownMessage;

describe('approvals in the config', () => {
  it('defaults: wait 2m, window 0 (once); the section defaults', () => {
    const config = load([{ grant: 'gh', methods: ['POST'], approve: 'human' }]);
    expect(config.agents['bot']!.rules[0]).toMatchObject({ approve: 'human' });
    expect(config.approvals).toEqual({ max_pending: 100, max_pending_per_agent: 10, max_held_body: 1024 * 1024, pending_ttl: 900_000 });
    const policy = compileRules('bot', config.agents['bot']!.rules, 'enforce');
    const verdict = evaluate(policy, { grant: 'gh', method: 'POST', path: '/x', source: '127.0.0.1', bodyBytes: 0, now: new Date() });
    expect(verdict.approvalBy).toMatchObject({ waitMs: 120_000, windowMs: 0, paths: undefined });
  });

  it('reads wait: 0 and windows, and caps the wait at 30m', () => {
    const config = load([{ grant: 'gh', approve: 'human', approval: { wait: 0, window: '15m' } }]);
    expect(config.agents['bot']!.rules[0]!.approval).toEqual({ wait: 0, window: 900_000, preview: 'redacted' });
    expect(refusal(() => load([{ grant: 'gh', approve: 'human', approval: { wait: '31m' } }]))).toContain('at most 30m');
  });

  it('refuses approval without approve, approve on a deny rule, other approvers, and a notify URL that is not https', () => {
    expect(refusal(() => load([{ grant: 'gh', approval: { wait: '1m' } }]))).toContain('needs approve: human');
    expect(refusal(() => load([{ grant: 'gh', deny: true, approve: 'human' }]))).toContain('approve belongs on an allow rule');
    expect(refusal(() => load([{ grant: 'gh', approve: 'robot' }]))).toContain('approve');
    expect(refusal(() => load([], { approvals: { notify: 'http://hooks.example.com/x' } }))).toContain('notify');
    expect(load([], { approvals: { notify: 'env:HOOK_URL' } }).approvals.notify).toEqual({ kind: 'env', name: 'HOOK_URL' });
  });

  it('asks only when every matching allow rule wants a yes: a rule that allows outright is the narrower word', () => {
    const config = load([
      { grant: 'gh', methods: ['POST'], paths: ['/repos/**'], approve: 'human' },
      { grant: 'gh', methods: ['POST'], paths: ['/repos/*/issues'] },
    ]);
    const policy = compileRules('bot', config.agents['bot']!.rules, 'enforce');
    const ask = (path: string) => evaluate(policy, { grant: 'gh', method: 'POST', path, source: '127.0.0.1', bodyBytes: 0, now: new Date() }).approvalBy;
    expect(ask('/repos/acme/merges')).toBeDefined();
    expect(ask('/repos/acme/issues')).toBeUndefined();
    // Warn mode asks nobody.
    const watch = compileRules('bot', config.agents['bot']!.rules, 'warn');
    expect(evaluate(watch, { grant: 'gh', method: 'POST', path: '/repos/a/merges', source: '', bodyBytes: 0, now: new Date() }).approvalBy).toBeUndefined();
  });

  it('asks for a near spelling of a path that needs a yes, as a lenient server routes it (issue 46)', () => {
    // The approval rule names /repos/*/merges; an outright rule covers everything under /REPOS
    // (as a case-sensitive reading would have it). Express routes /REPOS/a/merges to /repos/a/merges.
    const config = load([
      { grant: 'gh', methods: ['POST'], paths: ['/repos/*/merges'], approve: 'human' },
      { grant: 'gh', methods: ['POST'], paths: ['/REPOS/**', '/x/**'] },
    ]);
    const policy = compileRules('bot', config.agents['bot']!.rules, 'enforce');
    const ask = (path: string) => evaluate(policy, { grant: 'gh', method: 'POST', path, source: '127.0.0.1', bodyBytes: 0, now: new Date() });
    for (const path of ['/repos/a/merges', '/REPOS/a/merges', '/REPOS/a/MERGES/', '/REPOS/a/merges.json']) {
      expect(ask(path).allowed, path).toBe(true);
      expect(ask(path).approvalBy?.rule, path).toContain('rules[0]');
    }
    // A path the approval rule does not name in any spelling is allowed outright.
    expect(ask('/x/a/merges').approvalBy).toBeUndefined();
    expect(ask('/REPOS/a/issues').approvalBy).toBeUndefined();
  });
});
