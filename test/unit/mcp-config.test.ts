// MCP in the config: a grant's mcp endpoints, and the rule conditions that judge messages there.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { thrownMessage } from '../helpers/thrown.ts';
import { compileRules, evaluate, evaluateMcp, type PolicyRequest } from '../../src/policy/rules.ts';

const load = (rules: unknown[], mcp: unknown = { paths: ['/mcp'] }) =>
  parseConfig(
    {
      grants: { linear: { type: 'bearer', domains: ['mcp.example.test'], secret: 'env:X', ...(mcp ? { mcp } : {}) } },
      agents: { bot: { key: 'env:K', rules } },
    },
    '/home/test',
  );

const refusal = thrownMessage;

const base: PolicyRequest = { grant: 'linear', method: 'POST', path: '/mcp', source: '127.0.0.1', bodyBytes: 10, now: new Date(), mcpEndpoint: true };

describe('MCP rules', () => {
  it('refuses MCP conditions on a grant with no MCP endpoints, and names that are not tool names', () => {
    expect(refusal(() => load([{ grant: 'linear', tools: ['search_*'] }], null))).toContain('give grants.linear.mcp');
    expect(refusal(() => load([{ grant: 'linear', tools: ['search issues'] }]))).toContain('tool name or glob');
    expect(refusal(() => load([{ grant: 'linear', mcp_methods: ['tools/call '] }]))).toContain('method name');
    expect(refusal(() => load([], { paths: ['mcp'] }))).toContain('starting with /');
  });

  it('admits the HTTP request to the endpoint by an MCP allow rule, and nothing else on the grant', () => {
    const policy = compileRules('bot', load([{ grant: 'linear', tools: ['search_*'] }]).agents['bot']!.rules, 'enforce');
    expect(evaluate(policy, base).allowed).toBe(true);
    expect(evaluate(policy, { ...base, path: '/api/issues', mcpEndpoint: false }).allowed).toBe(false);
  });

  it('judges each message: tools/call needs a matching allow rule, deny rules win, protocol methods pass', () => {
    const rules = load([
      { grant: 'linear', tools: ['search_*'] },
      { grant: 'linear', tools: ['comment'], args: { team: 'eng-*' } },
      { grant: 'linear', deny: true, tools: ['search_private'] },
      { grant: 'linear', deny: true, mcp_methods: ['resources/*'] },
    ]).agents['bot']!.rules;
    const policy = compileRules('bot', rules, 'enforce');
    const judge = (method: string, tool?: string, args?: Record<string, unknown>) => evaluateMcp(policy, { ...base, mcp: { method, tool, args } }).allowed;
    expect(judge('tools/call', 'search_issues', {})).toBe(true);
    expect(judge('tools/call', 'search_private', {})).toBe(false);
    expect(judge('tools/call', 'SEARCH_PRIVATE', {})).toBe(false);
    expect(judge('tools/call', 'delete', {})).toBe(false);
    expect(judge('tools/call', 'comment', { team: 'eng-web' })).toBe(true);
    expect(judge('tools/call', 'comment', { team: 'sales' })).toBe(false);
    expect(judge('tools/list')).toBe(true);
    expect(judge('initialize')).toBe(true);
    expect(judge('resources/read')).toBe(false);
    // Listing: a tool with an args rule is shown (some call of it is allowed); a denied one is not.
    const visible = (tool: string) => evaluateMcp(policy, { ...base, mcp: { method: 'tools/call', tool, argsAny: true } }).allowed;
    expect([visible('comment'), visible('search_private'), visible('delete')]).toEqual([true, false, false]);
  });

  it('a rule in warn mode only reports', () => {
    const policy = compileRules('bot', load([{ grant: 'linear', deny: true, tools: ['delete_*'], mode: 'warn' }]).agents['bot']!.rules, 'enforce');
    expect(evaluateMcp(policy, { ...base, mcp: { method: 'tools/call', tool: 'delete_all', args: {} } })).toMatchObject({ allowed: true, outcome: 'warn' });
  });
});
