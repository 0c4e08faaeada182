// What a newcomer reads first names the dashboard and how to sign in (issue 36, item 4).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the README front matter', () => {
  it('names the dashboard, where it is and how to sign in, before the first section; the map of the docs names it too', () => {
    const front = readme.slice(0, readme.indexOf('## Quick start'));
    expect(front).toMatch(/\*\*dashboard\*\*/);
    expect(front).toContain('http://127.0.0.1:8788/');
    expect(front).toContain('data/admin.token');
    expect(readme.slice(readme.indexOf('## Documentation'), readme.indexOf('## Development'))).toContain('dashboard');
  });

  it('says the EBADENGINE warnings of an install on an older Node mean nothing, where the install is', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Point an agent at it'));
    expect(quickStart).toContain('EBADENGINE');
  });
});
