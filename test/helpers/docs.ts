// The documentation as one text: the README (the front door) and the pages under docs/, each a
// topic. Tests that check what the docs say find a section by its heading wherever it lives.
import { readdirSync, readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url);

export const README = readFileSync(new URL('README.md', ROOT), 'utf8');

/** The docs pages by file name (docs/*.md), in name order. */
export const DOC_PAGES: ReadonlyMap<string, string> = new Map(
  readdirSync(new URL('docs/', ROOT))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => [name, readFileSync(new URL(`docs/${name}`, ROOT), 'utf8')]),
);

/** README and every page, one after another. */
export const DOCS = [README, ...DOC_PAGES.values()].join('\n');

/** A `## heading` section, from its heading to the next `## ` (or the end of its page); undefined when no page has it. */
export function docsSection(heading: string): string | undefined {
  for (const page of [README, ...DOC_PAGES.values()]) {
    const start = page.indexOf(`\n## ${heading}\n`);
    if (start < 0) continue;
    const end = page.indexOf('\n## ', start + 1);
    return page.slice(start, end < 0 ? undefined : end);
  }
  return undefined;
}
