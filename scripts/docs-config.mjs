// Writes the config reference into docs/configuration.md (between its markers) from the schema:
// `npm run docs:config` after a change to src/config/schema/config.ts. test/unit/config-reference.test.ts
// fails while the page and the schema differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { configReference } from '../src/config/reference.ts';

const PAGE = new URL('../docs/configuration.md', import.meta.url);
const START = '<!-- config-reference: made by npm run docs:config from src/config/schema/config.ts -->';
const END = '<!-- config-reference end -->';
const page = readFileSync(PAGE, 'utf8');
const from = page.indexOf(START);
const to = page.indexOf(END);
if (from < 0 || to < from) throw new Error(`docs/configuration.md has no ${START} … ${END} markers`);
writeFileSync(PAGE, `${page.slice(0, from + START.length)}\n${configReference()}${page.slice(to)}`);
console.log('docs/configuration.md: config reference written');
