import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RuleConfig } from '../../../src/config/index.ts';
import type { PolicyQuery } from '../../../src/policy/cedar/contract.ts';
import { decide, ruleDenied } from '../../../src/policy/cedar/decide.ts';
import { loadPolicy } from '../../../src/policy/cedar/load.ts';
import { compileRules, evaluate, type PolicyRequest } from '../../../src/policy/rules.ts';

const rules: RuleConfig[] = [
  { grant: 'github', deny: false, custom_methods: false, methods: ['GET'] },
  { grant: 'github', deny: true, custom_methods: false, paths: ['/secret/**'] },
];
const policy = compileRules('claude', rules, 'enforce');

async function loaded(cedar: string | undefined) {
  const home = mkdtempSync(join(tmpdir(), 'keyway-decide-'));
  if (cedar !== undefined) {
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(join(home, 'policies', 'p.cedar'), cedar, { mode: 0o600 });
  }
  return loadPolicy({ home, agents: { claude: { mode: 'enforce', grants: ['github'], rules } } });
}

function ask(method: string, path: string) {
  const request: PolicyRequest = { grant: 'github', method, path, source: '127.0.0.1', bodyBytes: 0, now: new Date('2026-11-29T10:00:00Z') };
  const query = (): PolicyQuery => ({
    agent: 'claude',
    parents: [],
    action: 'request',
    grant: 'github',
    context: { method, host: 'api.github.com', port: 443, path, queryKeys: [], bodySize: 0, time: request.now, sourceIp: '127.0.0.1' },
  });
  return { yaml: evaluate(policy, request), query };
}

const CEDAR = `@id("post-issues") permit (principal, action, resource) when { context.method == "POST" && context.path like "/issues*" };
@id("post-secret") permit (principal, action, resource) when { context.method == "GET" && context.path like "/secret*" };
@id("no-admin") forbid (principal, action, resource) when { context.path like "/admin*" };`;

describe('decide: YAML rules and Cedar under Cedar rule', () => {
  it('without Cedar files is the YAML verdict, and never builds a query', async () => {
    const none = await loaded(undefined);
    const never = () => {
      throw new Error('asked');
    };
    expect(decide(ask('GET', '/x').yaml, policy, none, never)).toMatchObject({ allowed: true, code: undefined, cedar: undefined });
    expect(decide(ask('POST', '/x').yaml, policy, none, never)).toMatchObject({
      allowed: false,
      code: 'policy_denied',
      deciding: ['yaml:agents.claude.rules[0]'],
    });
  });

  it('a forbid wins over a YAML allow; a permit admits what no YAML allow did; a YAML deny is never overridden', async () => {
    const set = await loaded(CEDAR);
    const at = (m: string, p: string) => {
      const { yaml, query } = ask(m, p);
      return decide(yaml, policy, set, query);
    };
    expect(at('GET', '/repos')).toMatchObject({ allowed: true, code: undefined });
    expect(at('GET', '/admin')).toMatchObject({ allowed: false, code: 'rule_denied', deciding: ['no-admin'] });
    expect(at('POST', '/issues/1')).toMatchObject({ allowed: true, deciding: ['post-issues'], verdict: { rule: 'post-issues', outcome: 'allow' } });
    expect(at('POST', '/repos')).toMatchObject({ allowed: false, code: 'policy_denied', deciding: ['yaml:agents.claude.rules[0]'] });
    expect(at('GET', '/secret/x')).toMatchObject({ allowed: false, code: 'policy_denied', deciding: ['yaml:agents.claude.rules[1]'] });
    const denied = ruleDenied(at('DELETE', '/admin'), { grant: 'github', method: 'DELETE', path: '/admin' });
    expect(denied.code).toBe('rule_denied');
    expect(denied.message).toBe('no-admin refuses DELETE /admin: a Cedar policy forbids it');
  });
});
