import { describe, expect, it } from 'vitest';
import { cedarString } from '../../../src/policy/cedar/cedar-text.ts';
import { loadCedarEngine } from '../../../src/policy/cedar/engine.ts';
import { CEDAR_SCHEMA } from '../../../src/policy/cedar/schema.ts';
import { compileYamlPolicies, compileYamlText, type YamlAgent } from '../../../src/policy/cedar/yaml-compile.ts';

const rule = (fields: Partial<YamlAgent['rules'][number]> & { grant: string }): YamlAgent['rules'][number] => ({
  deny: false,
  custom_methods: false,
  ...fields,
});

const agents: Record<string, YamlAgent> = {
  zed: { mode: 'enforce', rules: [], grants: undefined },
  claude: {
    mode: 'enforce',
    grants: ['github', 'openai'],
    rules: [
      rule({ grant: 'github', methods: ['GET'], paths: ['/repos/**', '/user'] }),
      rule({ grant: 'github', deny: true, paths: ['/admin/**'], hours: '22:00-06:00' }),
      rule({ grant: 'github', methods: ['POST'], sources: ['10.0.0.0/8'], hours: '09:00-18:00', days: ['mon', 'fri'], tz: 'Europe/Paris', approve: 'human' }),
      rule({ grant: 'openai', deny: true, methods: ['DELETE'], mode: 'warn' }),
    ],
  },
};

describe('YAML rules compiled to Cedar', () => {
  it('gives each rule its id, sorts agents, and opens grants with no enforced allow rule', () => {
    const ids = compileYamlPolicies(agents).map((p) => p.id);
    expect(ids).toEqual([
      'yaml:agents.claude.rules[0]',
      'yaml:agents.claude.rules[1]',
      'yaml:agents.claude.rules[2]',
      'yaml:agents.claude.rules[3]',
      'yaml:agents.claude.grants.openai',
      'yaml:agents.zed',
    ]);
  });

  it('is deterministic: the same rules in another key order give the same text', () => {
    const reversed = Object.fromEntries(Object.entries(agents).reverse());
    expect(compileYamlText(reversed)).toBe(compileYamlText(agents));
  });

  it('writes conditions Cedar can say, and annotations for what it cannot', () => {
    const text = compileYamlText(agents);
    expect(text).toContain(
      '@id("yaml:agents.claude.rules[0]")\n@keyway_paths("/repos/**,/user")\npermit (principal == Agent::"claude", action, resource == Grant::"github")',
    );
    expect(text).toContain('["GET"].contains(context.method) && (context.path like "/repos/*" || context.path like "/user")');
    expect(text).toContain('forbid (principal == Agent::"claude", action, resource == Grant::"github")');
    // An overnight window in UTC: either side of midnight.
    expect(text).toContain('((context.time.hour * 60 + context.time.minute) >= 1320 || (context.time.hour * 60 + context.time.minute) < 360)');
    expect(text).toContain('@keyway_time("09:00-18:00 mon,fri Europe/Paris")');
    expect(text).toContain('context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8"))');
    expect(text).toContain('@approve("human")');
    expect(text).toContain('@mode("warn")\nforbid');
    expect(text).toContain('@id("yaml:agents.zed")\npermit (principal == Agent::"zed", action, resource);');
  });

  it('escapes quotes, backslashes, control characters and unicode so no name leaves its string', () => {
    expect(cedarString('a"b\\c\nd\u00e9\u{1f600}')).toBe('"a\\"b\\\\c\\nd\\u{e9}\\u{1f600}"');
    const tricky = `x") when { true }; permit(principal, action, resource); //`;
    const text = compileYamlText({ a: { mode: 'enforce', grants: [tricky], rules: [] } });
    expect(text.match(/^permit/gm)).toHaveLength(1);
  });

  it('parses and validates against the shipped schema in Cedar engine, names intact', async () => {
    const engine = await loadCedarEngine();
    const weird = 'o\'brien "q" \\ é';
    const text = compileYamlText({ ...agents, [weird]: { mode: 'enforce', grants: ['g"1'], rules: [rule({ grant: 'g"1', methods: ['GET'] })] } });
    const parts = engine.policySetTextToParts(text);
    expect(parts.type).toBe('success');
    const validation = engine.validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: text } });
    expect(validation.type === 'success' && validation.validationErrors).toEqual([]);
    const json = parts.type === 'success' ? parts.policies.map((p) => engine.policyToJson(p)) : [];
    const principals = json.flatMap((j) =>
      j.type === 'success' && j.json.principal.op === '==' ? [(j.json.principal as { entity: { id: string } }).entity.id] : [],
    );
    expect(principals).toContain(weird);
  });
});
