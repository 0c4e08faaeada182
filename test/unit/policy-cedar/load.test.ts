import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PolicyQuery } from '../../../src/policy/cedar/contract.ts';
import { namedPolicies } from '../../../src/policy/cedar/decide.ts';
import { loadPolicy, type PolicyInputs } from '../../../src/policy/cedar/load.ts';

function home(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-cedar-'));
  mkdirSync(join(dir, 'policies'), { mode: 0o700 });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'policies', name), text, { mode: 0o600 });
  return dir;
}

const agents: PolicyInputs['agents'] = { claude: { mode: 'enforce', grants: ['github'], rules: [] } };

const query = (over: Partial<PolicyQuery> = {}, context: Partial<PolicyQuery['context']> = {}): PolicyQuery => ({
  agent: 'claude',
  parents: [],
  action: 'request',
  grant: 'github',
  ...over,
  context: {
    method: 'GET',
    host: 'api.github.com',
    port: 443,
    path: '/repos/a/b',
    queryKeys: [],
    bodySize: 0,
    time: new Date('2026-11-29T10:00:00Z'),
    sourceIp: '::ffff:127.0.0.1',
    ...context,
  },
});

const ADMIN = `// who may not reach the admin pages
@id("no-admin")
forbid (principal, action == Action::"request", resource == Grant::"github")
when { context.path like "/admin*" };

permit (principal == Agent::"claude", action, resource) when { context.method == "POST" };
`;

describe('loading Cedar files', () => {
  it('judges with Cedar: a forbid names its @id, a permit without one is FILE:LINE', async () => {
    const h = home({ 'a.cedar': ADMIN });
    const loaded = await loadPolicy({ home: h, agents });
    expect(loaded.hasCedarFiles).toBe(true);
    expect(loaded.files).toEqual([join(h, 'policies', 'a.cedar')]);
    expect(loaded.judge(query({}, { path: '/admin/users' }))).toEqual({ allowed: false, deciding: ['no-admin'], errors: [] });
    expect(loaded.judge(query({}, { method: 'POST' }))).toEqual({ allowed: true, deciding: [`${join(h, 'policies', 'a.cedar')}:6`], errors: [] });
    expect(loaded.judge(query()).allowed).toBe(false);
    expect(loaded.policies.find((p) => p.id === 'no-admin')?.origin).toBe(`${join(h, 'policies', 'a.cedar')}:2:1`);
  });

  it('slices: a policy scoped to another agent or grant is never asked', async () => {
    const h = home({
      'a.cedar': '@id("other") forbid (principal == Agent::"other", action, resource);\n@id("g2") forbid (principal, action, resource == Grant::"g2");',
    });
    const loaded = await loadPolicy({ home: h, agents });
    expect(loaded.judge(query()).deciding).toEqual([]);
    expect(loaded.judge(query({ agent: 'other' })).deciding).toEqual(['other']);
    expect(loaded.judge(query({ grant: 'g2' })).deciding).toEqual(['g2']);
    // A parent's forbid reaches its children (principal in Agent::"parent").
    const p = home({ 'p.cedar': '@id("parent") forbid (principal in Agent::"lead", action, resource);' });
    expect((await loadPolicy({ home: p, agents })).judge(query({ parents: ['lead'] })).deciding).toEqual(['parent']);
  });

  it('a forbid that fails on the request (body_size of an undeclared body) refuses', async () => {
    const h = home({
      'a.cedar': '@id("big") forbid (principal, action, resource) when { context.body_size > 10 };\n@id("all") permit (principal, action, resource);',
    });
    const loaded = await loadPolicy({ home: h, agents });
    expect(loaded.judge(query({}, { bodySize: 5 }))).toMatchObject({ allowed: true, deciding: ['all'] });
    expect(loaded.judge(query({}, { bodySize: undefined }))).toMatchObject({ allowed: false, deciding: ['big'], errors: ['big'] });
  });

  it('reads time, source address, query keys, MCP tool and spend as the schema types them', async () => {
    const h = home({
      'a.cedar': `@id("p") permit (principal, action == Action::"mcp_call", resource) when {
  context.time.hour == 10 && context.time.weekday == "sun" && context.time.utc > datetime("2026-01-01") &&
  context has source_ip && context.source_ip.isLoopback() && context.query_keys.contains("page") &&
  context has mcp_tool && context.mcp_tool == "search" && context.spend_today_usd.lessThan(decimal("2.5"))
};`,
    });
    const loaded = await loadPolicy({ home: h, agents });
    const ctx = { queryKeys: ['page', 'page'], mcpTool: 'search', spendTodayUsd: 1.25 };
    expect(loaded.judge(query({ action: 'mcp_call' }, ctx))).toEqual({ allowed: true, deciding: ['p'], errors: [] });
    expect(loaded.judge(query({ action: 'mcp_call' }, { ...ctx, mcpTool: 'delete' })).allowed).toBe(false);
    expect(loaded.judge(query({ action: 'request' }, ctx)).allowed).toBe(false);
    // No IP address (a Unix socket): no source_ip, so the permit that reads it does not match.
    expect(loaded.judge(query({ action: 'mcp_call' }, { ...ctx, sourceIp: 'unknown' }))).toEqual({ allowed: false, deciding: [], errors: [] });
  });

  it('refuses a file that does not parse, naming FILE:LINE:COLUMN', async () => {
    const h = home({ 'a.cedar': ADMIN, 'b.cedar': 'permit (principal, action, resource)\nwhen { context.path like };\n' });
    await expect(loadPolicy({ home: h, agents })).rejects.toThrow(new RegExp(`${join(h, 'policies', 'b.cedar')}:2:26: `));
  });

  it('refuses a duplicate id, and a file that takes a YAML rule id', async () => {
    await expect(loadPolicy({ home: home({ 'a.cedar': ADMIN, 'b.cedar': ADMIN }), agents })).rejects.toThrow(/"no-admin" is used already/);
    const spoof = home({ 'a.cedar': '@id("yaml:agents.claude.rules[0]") permit (principal, action, resource);' });
    await expect(loadPolicy({ home: spoof, agents })).rejects.toThrow(/used already \(the compiled YAML rules\)/);
  });

  it('takes an @id of 1 to 128 printable characters only: it is written on audit lines and refusals', async () => {
    const long = home({ 'a.cedar': `permit (principal, action, resource);\n@id("${'x'.repeat(129)}") forbid (principal, action, resource);` });
    await expect(loadPolicy({ home: long, agents })).rejects.toThrow(/a\.cedar:2:1: @id must be 1 to 128 printable characters/);
    const control = home({ 'a.cedar': '@id("a\\nb") forbid (principal, action, resource);' });
    await expect(loadPolicy({ home: control, agents })).rejects.toThrow(/@id must be 1 to 128 printable characters/);
    expect(namedPolicies(['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toBe('a,b,c,d,e and 2 more');
  });

  it('refuses a policy file others may write, or a folder above it they may', async () => {
    const h = home({ 'a.cedar': ADMIN });
    chmodSync(join(h, 'policies', 'a.cedar'), 0o666);
    await expect(loadPolicy({ home: h, agents })).rejects.toThrow(/a\.cedar is refused: the file is writable by every user/);
    chmodSync(join(h, 'policies', 'a.cedar'), 0o600);
    chmodSync(join(h, 'policies'), 0o770);
    await expect(loadPolicy({ home: h, agents })).rejects.toThrow(/its folder .*policies is writable by its group/);
  });

  it('reads policy.files after the home folder, absolute or relative, but only in the home', async () => {
    const h = home({ 'a.cedar': ADMIN });
    const outside = mkdtempSync(join(tmpdir(), 'keyway-cedar-outside-'));
    writeFileSync(join(outside, 'x.cedar'), '@id("x") forbid (principal, action, resource);', { mode: 0o600 });
    await expect(loadPolicy({ home: h, agents, policy: { files: [join(outside, 'x.cedar')] } })).rejects.toThrow(
      /x\.cedar is refused: it is outside keyway's home/,
    );
    const elsewhere = mkdtempSync(join(h, 'named-'));
    writeFileSync(join(elsewhere, 'x.cedar'), '@id("x") forbid (principal, action, resource) when { context.method == "DELETE" };', { mode: 0o600 });
    writeFileSync(join(h, 'extra.cedar'), '@id("y") forbid (principal, action, resource) when { context.method == "PUT" };', { mode: 0o600 });
    const loaded = await loadPolicy({ home: h, agents, policy: { files: [join(elsewhere, 'x.cedar'), 'extra.cedar'] } });
    expect(loaded.files).toEqual([join(h, 'policies', 'a.cedar'), join(elsewhere, 'x.cedar'), join(h, 'extra.cedar')]);
    expect(loaded.judge(query({}, { method: 'DELETE' })).deciding).toEqual(['x']);
    await expect(loadPolicy({ home: h, agents, policy: { files: ['missing.cedar'] } })).rejects.toThrow(
      /missing\.cedar is refused: it cannot be read \(ENOENT\)/,
    );
  });

  it('hashes what the policies say: not whitespace or comments, but any change, YAML or Cedar', async () => {
    const a = await loadPolicy({ home: home({ 'a.cedar': ADMIN }), agents });
    const reformatted = ADMIN.replace('// who may not reach the admin pages\n', '').replace(/\n/g, '\n\n  ');
    const b = await loadPolicy({ home: home({ 'a.cedar': reformatted }), agents });
    expect(b.hash).toBe(a.hash);
    const c = await loadPolicy({ home: home({ 'a.cedar': ADMIN.replace('/admin*', '/admin/*') }), agents });
    expect(c.hash).not.toBe(a.hash);
    const d = await loadPolicy({ home: home({ 'a.cedar': ADMIN }), agents: { claude: { mode: 'enforce', grants: ['github', 'x'], rules: [] } } });
    expect(d.hash).not.toBe(a.hash);
  });
});

describe('the context keyway builds', () => {
  it('is what the shipped schema says, full or with every optional attribute absent', async () => {
    const { loadCedarEngine } = await import('../../../src/policy/cedar/engine.ts');
    const { CEDAR_SCHEMA } = await import('../../../src/policy/cedar/schema.ts');
    const { cedarContext } = await import('../../../src/policy/cedar/context.ts');
    const engine = await loadCedarEngine();
    const full = query({ action: 'mcp_call' }, { queryKeys: ['b', 'a'], mcpTool: 't', model: 'm', spendTodayUsd: 3.5, sourceIp: '::1' }).context;
    const bare = query({}, { bodySize: undefined, sourceIp: 'unknown' }).context;
    for (const [action, context] of [
      ['mcp_call', full],
      ['request', bare],
    ] as const) {
      const answer = engine.checkParseContext({ context: cedarContext(context), schema: CEDAR_SCHEMA, action: { type: 'Action', id: action } });
      expect(answer).toEqual({ type: 'success' });
    }
    // The check can fail: a context missing a required attribute is refused.
    const { path: _path, ...missing } = cedarContext(bare);
    expect(engine.checkParseContext({ context: missing, schema: CEDAR_SCHEMA, action: { type: 'Action', id: 'request' } }).type).toBe('failure');
  });
});
