// docs/spend.md cannot drift from the code: its table of shipped prices is the table's, row for
// row, under the date the file gives; its YAML examples load as a config, as written.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { PRICE_ROWS, PRICE_SOURCES, PRICES_AS_OF } from '../../src/spend/core/default-prices.ts';
import { VENDOR_CEILINGS } from '../../src/spend/core/pricing.ts';
import { DOC_PAGES } from '../helpers/docs.ts';

const page = DOC_PAGES.get('spend.md') ?? '';

describe('docs/spend.md', () => {
  it('dates the shipped prices as the file does, and shows each row of them as it is', () => {
    expect(page).toContain(`**${PRICES_AS_OF}** (\`PRICES_AS_OF\`)`);
    const shown = (v: number | undefined) => (v === undefined ? '=input' : String(v));
    const rows = PRICE_ROWS.map(
      (row) =>
        `| ${row.vendor} | ${row.models.map((m) => `\`${m}\``).join(', ')} | ${row.price.input_per_mtok} | ${row.price.output_per_mtok} | ${shown(row.price.cached_input_per_mtok)} | ${row.vendor === 'anthropic' ? shown(row.price.cache_write_per_mtok) : '–'} |`,
    );
    const table = page.split('\n').filter((line) => /^\| (anthropic|openai|gemini) \|/.test(line));
    expect(table).toEqual(rows);
  });

  it("shows each vendor's fallback price as the code computes it, and the sources of the shipped prices", () => {
    for (const api of ['anthropic', 'openai', 'gemini'] as const) {
      const c = VENDOR_CEILINGS[api];
      const row = page
        .split('\n')
        .map((line) => line.trim())
        .find((line) => line.startsWith(`| ${api} (`));
      expect(row, api).toMatch(
        new RegExp(
          `\\| ${c.input_per_mtok} \\| ${c.output_per_mtok} \\| ${c.cached_input_per_mtok} \\| ${String(c.cache_write_per_mtok).replace('.', '\\.')} \\|$`,
        ),
      );
    }
    for (const source of PRICE_SOURCES) expect(page).toContain(source.slice(0, 12));
  });

  it('has YAML examples that load as a config, as written', () => {
    const blocks = [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as Record<string, unknown>);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    const config = parseConfig(Object.assign({}, ...blocks), '/home/test');
    expect(config.grants['azure-openai']!.model_api).toBe('openai');
    expect(Object.keys(config.pricing)).toContain('claude-sonnet-4-5*');
    expect(config.budgets.map((b) => b.name)).toEqual(['budgets[0]', 'budgets[1]', 'budgets[2]', 'budgets[3]']);
  });
});
