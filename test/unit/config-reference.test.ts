// The docs cannot drift from the code (issue 37, item 5): the config reference in
// docs/configuration.md is the schema's, key for key, and every error code has its row in the docs
// (test/unit/error-tables.test.ts). A key added to src/config/schema/config.ts fails here until
// `npm run docs:config` writes it in.
import { describe, expect, it } from 'vitest';
import { configKeys, configReference } from '../../src/config/reference.ts';
import { DOC_PAGES } from '../helpers/docs.ts';

const page = DOC_PAGES.get('configuration.md') ?? '';

describe('the config reference', () => {
  it('is what the schema makes (run `npm run docs:config` after changing src/config/schema/config.ts)', () => {
    const start = page.indexOf('<!-- config-reference:');
    const end = page.indexOf('<!-- config-reference end -->');
    expect(start).toBeGreaterThan(-1);
    const table = page.slice(page.indexOf('\n', start) + 1, end);
    expect(table).toBe(configReference());
  });

  it('names every key of the schema, nested ones and those of each grant type among them', () => {
    const paths = configKeys().map((k) => k.path);
    for (const key of ['proxy.transparent.listen', 'grants.ID.assume_role.role_arn', 'agents.ID.rules[].custom_methods', 'oauth.refresh_skew', 'store.url'])
      expect(paths).toContain(key);
    for (const path of paths) expect(page).toContain(`| \`${path}\` |`);
  });
});
