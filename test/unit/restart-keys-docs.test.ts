// The keys a reload cannot apply (app/config-changes.ts RESTART_KEYS) are the ones the example
// config's header and docs/operations.md name (issue 48: both had left out egress).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RESTART_KEYS } from '../../src/app/config-changes.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the restart list', () => {
  it('is named whole in the example config and in docs/operations.md', () => {
    const header = read('config/keyway.example.yaml').split('\n\n')[0]!.replace(/\n# /g, ' ');
    const operations = read('docs/operations.md').replace(/\n/g, ' ');
    for (const key of RESTART_KEYS.filter((k) => k !== 'proxy.upstream_timeout')) {
      const named = key.includes('.') ? key : `${key}.*`;
      expect(header, `config/keyway.example.yaml: ${named}`).toContain(named);
      expect(operations, `docs/operations.md: ${named}`).toContain(`\`${named}\``);
    }
  });
});
