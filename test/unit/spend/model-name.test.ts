import { describe, expect, it } from 'vitest';
import { isModelName, MAX_MODEL_NAMES, MODEL_NAME_MAX, ModelNames, modelNameShape, OTHER_MODEL } from '../../../src/spend/core/model-name.ts';

const at = new Date('2026-11-26T10:00:00Z');

describe('model names: what one may be', () => {
  it('admits the names vendors and gateways give', () => {
    for (const name of [
      'claude-sonnet-4-5-20250929',
      'gpt-4.1-mini',
      'models/gemini-2.5-pro',
      'anthropic/claude-sonnet-4.5',
      'claude-opus-4-1@20250805',
      'anthropic.claude-3-5-sonnet-20240620-v1:0',
      'llama3:8b',
      'ft:gpt-4o-mini:acme::abc123',
      'Qwen2.5+coder',
      'a'.repeat(MODEL_NAME_MAX),
    ])
      expect(isModelName(name), name).toBe(true);
  });

  it('refuses the rest: too long, other characters, an odd start, empty', () => {
    for (const name of [
      'a'.repeat(MODEL_NAME_MAX + 1),
      'x'.repeat(8_000),
      '',
      '_other',
      '-gpt',
      '.hidden',
      'gpt 4',
      'gpt%2F4',
      'gpt\n4',
      'gpt-4o\u0000',
      'gpt-4o<script>',
      'модель',
      'gpt,4',
      'a?b',
      'a*b',
    ])
      expect(isModelName(name), JSON.stringify(name.slice(0, 20))).toBe(false);
    expect(modelNameShape('x'.repeat(8_000))).toBe(OTHER_MODEL);
    expect(modelNameShape('gpt-4o')).toBe('gpt-4o');
    expect(modelNameShape(null)).toBeNull();
  });
});

describe('model names: distinct names per agent per UTC day', () => {
  it('keeps the first MAX_MODEL_NAMES names as written, then `_other`; a name kept stays kept', () => {
    const names = new ModelNames();
    for (let i = 0; i < MAX_MODEL_NAMES; i++) expect(names.name('bot', `model-${i}`, at)).toBe(`model-${i}`);
    expect(names.name('bot', 'model-new', at)).toBe(OTHER_MODEL);
    expect(names.name('bot', 'model-0', at)).toBe('model-0');
    expect(names.name('bot', `model-${MAX_MODEL_NAMES - 1}`, at)).toBe(`model-${MAX_MODEL_NAMES - 1}`);
  });

  it('an ill-formed name takes no place under the cap', () => {
    const names = new ModelNames(2);
    expect(names.name('bot', 'x'.repeat(8_000), at)).toBe(OTHER_MODEL);
    expect(names.name('bot', 'bad name', at)).toBe(OTHER_MODEL);
    expect(names.name('bot', 'a', at)).toBe('a');
    expect(names.name('bot', 'b', at)).toBe('b');
    expect(names.name('bot', 'c', at)).toBe(OTHER_MODEL);
  });

  it('counts each agent apart, the anonymous agent as one more', () => {
    const names = new ModelNames(1);
    expect(names.name('bot', 'a', at)).toBe('a');
    expect(names.name('bot', 'b', at)).toBe(OTHER_MODEL);
    expect(names.name('other', 'b', at)).toBe('b');
    expect(names.name(null, 'c', at)).toBe('c');
    expect(names.name(null, 'd', at)).toBe(OTHER_MODEL);
  });

  it('starts afresh at 00:00 UTC, not within the day', () => {
    const names = new ModelNames(1);
    expect(names.name('bot', 'a', new Date('2026-11-26T00:00:00Z'))).toBe('a');
    expect(names.name('bot', 'b', new Date('2026-11-26T23:59:59.999Z'))).toBe(OTHER_MODEL);
    expect(names.name('bot', 'b', new Date('2026-11-27T00:00:00Z'))).toBe('b');
    expect(names.name('bot', 'a', new Date('2026-11-27T01:00:00Z'))).toBe(OTHER_MODEL);
  });

  it('null stays null and takes no place', () => {
    const names = new ModelNames(1);
    expect(names.name('bot', null, at)).toBeNull();
    expect(names.name('bot', 'a', at)).toBe('a');
  });
});
