// The config's spend keys (issue 63), through the real loader from YAML: pricing:, budgets: and a
// grant's model_api. Each refusal names its key path; what is not listed as admitted is refused.
import { describe, expect, it } from 'vitest';
import { changedKeys, needsRestart } from '../../src/app/config-changes.ts';
import { parseConfigSource } from '../../src/config/load.ts';
import { thrownMessage } from '../helpers/thrown.ts';

const load = (yaml: string) => parseConfigSource('/home/test', { path: '/home/test/config/keyway.yaml', text: yaml });
const refusal = (yaml: string) => thrownMessage(() => load(yaml));

const GRANTS = `
grants:
  ci-github: {type: bearer, domains: [api.github.com], secret: env:GH}
  openai: {type: bearer, domains: [api.openai.com], secret: env:OAI}
agents:
  ci-bot: {key: env:K1}
  reviewer: {key: env:K2}
`;

describe('pricing:', () => {
  it('is empty when absent, and keeps what it is given in the order written', () => {
    expect(load('').pricing).toEqual({});
    const config = load(`
pricing:
  "claude-sonnet-4*": {input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3, cache_write_per_mtok: 3.75}
  my-finetune: {input_per_mtok: 0, output_per_mtok: 0.5}
  "models/gemini-2.5-?ro": {input_per_mtok: 1.25, output_per_mtok: 10}
  "anthropic.claude-opus-4-1-20250805-v1:0": {input_per_mtok: 15, output_per_mtok: 75}
`);
    expect(Object.keys(config.pricing)).toEqual(['claude-sonnet-4*', 'my-finetune', 'models/gemini-2.5-?ro', 'anthropic.claude-opus-4-1-20250805-v1:0']);
    expect(config.pricing['claude-sonnet-4*']).toEqual({ input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3, cache_write_per_mtok: 3.75 });
    expect(config.pricing['my-finetune']).toEqual({ input_per_mtok: 0, output_per_mtok: 0.5 });
    expect(Object.isFrozen(config.pricing['my-finetune'])).toBe(true);
  });

  it('refuses NaN, infinities, negatives, strings and a missing price, each at its key', () => {
    const message = refusal(`
pricing:
  a: {input_per_mtok: .nan, output_per_mtok: .inf}
  b: {input_per_mtok: -1, output_per_mtok: "2"}
  c: {output_per_mtok: 1}
  d: {input_per_mtok: 1, output_per_mtok: 1, cached_input_per_mtok: -0.1, cache_write_per_mtok: -.inf}
`);
    for (const path of [
      'pricing.a.input_per_mtok',
      'pricing.a.output_per_mtok',
      'pricing.b.input_per_mtok',
      'pricing.b.output_per_mtok',
      'pricing.d.cached_input_per_mtok',
      'pricing.d.cache_write_per_mtok',
    ])
      expect(message).toContain(`${path}: expected a price in USD per million tokens`);
    expect(message).toContain('pricing.c.input_per_mtok: is required');
  });

  it('refuses an unknown key by name, and a list or a bare number for a price', () => {
    expect(refusal('pricing:\n  gpt-4o: {input_per_mtok: 1, output_per_mtok: 2, cached_per_mtok: 1}')).toContain('pricing.gpt-4o.cached_per_mtok: unknown key');
    expect(refusal('pricing:\n  gpt-4o: {input_per_mtok: 1, output_per_mtok: 2, cache_write_per_mtk: 1}')).toContain('did you mean cache_write_per_mtok?');
    expect(refusal('pricing: [gpt-4o]')).toContain('pricing: expected a map of keys, got a list');
    expect(refusal('pricing:\n  gpt-4o: 2.5')).toContain('pricing.gpt-4o: expected a map of keys, got number 2.5');
  });

  it('refuses an empty glob and any character a model name is not made of', () => {
    expect(refusal('pricing:\n  "": {input_per_mtok: 1, output_per_mtok: 2}')).toContain('expected a model name or glob');
    for (const glob of ['gpt 4o', 'gpt-[45]o', 'gpt-{4,5}', 'gpt-4o\\n', 'gpt-4o#x', 'ü-model'])
      expect(refusal(`pricing:\n  ${JSON.stringify(glob)}: {input_per_mtok: 1, output_per_mtok: 2}`), glob).toContain('expected a model name or glob');
    expect(refusal(`pricing:\n  "${'a'.repeat(201)}": {input_per_mtok: 1, output_per_mtok: 2}`)).toContain('at most 200 characters');
  });
});

describe('budgets:', () => {
  it('is empty when absent; each budget is named by its place, over defaults to refuse', () => {
    expect(load('').budgets).toEqual([]);
    const config = load(`${GRANTS}
budgets:
  - {agent: ci-bot, limit: {usd: 5}, per: day, warn_at: 0.8}
  - {end_user: "*", limit: {tokens: 2000000}, per: month, over: approve}
  - {agent: "*", grant: openai, limit: {usd: 0.25}, per: hour}
  - {limit: {tokens: 1}, per: day}
`);
    expect(config.budgets).toEqual([
      { name: 'budgets[0]', agent: 'ci-bot', limit: { usd: 5 }, per: 'day', warn_at: 0.8, over: 'refuse' },
      { name: 'budgets[1]', end_user: '*', limit: { tokens: 2_000_000 }, per: 'month', over: 'approve' },
      { name: 'budgets[2]', agent: '*', grant: 'openai', limit: { usd: 0.25 }, per: 'hour', over: 'refuse' },
      { name: 'budgets[3]', limit: { tokens: 1 }, per: 'day', over: 'refuse' },
    ]);
    // No key a budget was not given is present, even as undefined (listings print what is there).
    expect(Object.keys(config.budgets[3]!)).toEqual(['name', 'limit', 'per', 'over']);
  });

  it('takes exactly one of usd above 0 or a positive whole number of tokens', () => {
    expect(refusal('budgets: [{limit: {}, per: day}]')).toContain('budgets.0.limit: expected {usd: AMOUNT} or {tokens: COUNT}');
    expect(refusal('budgets: [{limit: {usd: 1, tokens: 2}, per: day}]')).toContain('budgets.0.limit: expected usd or tokens, not both');
    expect(refusal('budgets: [{per: day}]')).toContain('budgets.0.limit: is required');
    for (const usd of ['0', '-1', '.nan', '.inf', '"5"'])
      expect(refusal(`budgets: [{limit: {usd: ${usd}}, per: day}]`), usd).toContain('budgets.0.limit.usd: expected an amount in USD above 0');
    for (const tokens of ['0', '-5', '1.5', '.inf', '"100"', '1e300'])
      expect(refusal(`budgets: [{limit: {tokens: ${tokens}}, per: day}]`), tokens).toContain(
        'budgets.0.limit.tokens: expected a whole number of tokens above 0',
      );
    expect(refusal('budgets: [{limit: {dollars: 5}, per: day}]')).toContain('budgets.0.limit.dollars: unknown key');
  });

  it('takes per hour, day or month only, warn_at strictly between 0 and 1, over refuse or approve', () => {
    expect(refusal('budgets: [{limit: {usd: 1}}]')).toContain('budgets.0.per: expected one of hour, day, month');
    expect(refusal('budgets: [{limit: {usd: 1}, per: week}]')).toContain('budgets.0.per: expected one of hour, day, month');
    expect(refusal('budgets: [{limit: {usd: 1}, per: dya}]')).toContain('did you mean day?');
    for (const warn of ['0', '1', '1.5', '-0.2', '"0.8"', '.nan'])
      expect(refusal(`budgets: [{limit: {usd: 1}, per: day, warn_at: ${warn}}]`), warn).toContain('budgets.0.warn_at: expected a fraction between 0 and 1');
    expect(refusal('budgets: [{limit: {usd: 1}, per: day, over: deny}]')).toContain('budgets.0.over: expected one of refuse, approve');
  });

  it('refuses an unknown key by name, a selector that is no id, and a budget that is not a map', () => {
    expect(refusal('budgets: [{agnet: ci-bot, limit: {usd: 1}, per: day}]')).toContain('budgets.0.agnet: unknown key; did you mean agent?');
    expect(refusal('budgets: [{user: x, limit: {usd: 1}, per: day}]')).toContain('budgets.0.user: unknown key');
    expect(refusal('budgets: [{agent: "CI Bot", limit: {usd: 1}, per: day}]')).toContain('budgets.0.agent: expected an agent id');
    expect(refusal('budgets: [{grant: "ci-*", limit: {usd: 1}, per: day}]')).toContain('budgets.0.grant: expected a grant id');
    expect(refusal('budgets: [{end_user: "", limit: {usd: 1}, per: day}]')).toContain('budgets.0.end_user');
    expect(refusal('budgets: [{agent: 5, limit: {usd: 1}, per: day}]')).toContain('budgets.0.agent');
    expect(refusal('budgets: {agent: ci-bot}')).toContain('budgets: expected a list');
  });

  it("refuses a name a typo away from the config's agents and grants, and takes one that may be the store's", () => {
    const typo = refusal(`${GRANTS}\nbudgets: [{agent: ci-bto, limit: {usd: 1}, per: day}, {grant: opnai, limit: {usd: 1}, per: day}]`);
    expect(typo).toContain('budgets.0.agent: no agent "ci-bto" in the config; did you mean ci-bot?');
    expect(typo).toContain('budgets.1.grant: no grant "opnai" in the config; did you mean openai?');
    // Names far from every config id: an agent and a grant of the store (keyway doctor checks those).
    const config = load(`${GRANTS}\nbudgets: [{agent: nightly-etl, grant: anthropic-prod, limit: {usd: 1}, per: day}]`);
    expect(config.budgets[0]).toMatchObject({ agent: 'nightly-etl', grant: 'anthropic-prod' });
    // With no agents or grants in the config, nothing is near: every name is taken.
    expect(load('budgets: [{agent: ci-bot, limit: {usd: 1}, per: day}]').budgets).toHaveLength(1);
  });
});

describe("a grant's model_api", () => {
  it('takes anthropic, openai, gemini or none; absent by default', () => {
    for (const api of ['anthropic', 'openai', 'gemini', 'none']) {
      const config = load(`grants:\n  gw: {type: bearer, domains: [llm.internal.example.com], secret: env:T, model_api: ${api}}`);
      expect(config.grants['gw']!.model_api).toBe(api);
    }
    expect(load('grants:\n  gw: {type: bearer, domains: [llm.example.com], secret: env:T}').grants['gw']!.model_api).toBeUndefined();
  });

  it('refuses any other value, with the one it was near', () => {
    expect(refusal('grants:\n  gw: {type: bearer, domains: [llm.example.com], secret: env:T, model_api: opnai}')).toContain(
      'grants.gw.model_api: expected one of anthropic, openai, gemini, none; did you mean openai?',
    );
    expect(refusal('grants:\n  gw: {type: api_key, domains: [llm.example.com], secret: env:T, inject: {header: x-api-key}, model_api: azure}')).toContain(
      'grants.gw.model_api: expected one of',
    );
    expect(refusal('grants:\n  gw: {type: bearer, domains: [llm.example.com], secret: env:T, model_api: true}')).toContain('grants.gw.model_api');
  });
});

describe('a reload', () => {
  it('names pricing, budgets and model_api as changed, applied without a restart', () => {
    const before = load(`${GRANTS}`);
    const after = load(`${GRANTS.replace('secret: env:OAI}', 'secret: env:OAI, model_api: openai}')}
pricing: {my-model: {input_per_mtok: 1, output_per_mtok: 2}}
budgets: [{agent: ci-bot, limit: {usd: 5}, per: day}]
`);
    const changed = changedKeys(before, after);
    expect(changed).toEqual(['budgets', 'grants.openai', 'pricing']);
    expect(changed.filter(needsRestart)).toEqual([]);
  });
});
