import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/errors/codes.ts';
import { docsSection } from '../helpers/docs.ts';

// Three places name keyway's error codes: the one table in src/errors/codes.ts (what keyway does),
// the README's table under "Errors the proxy returns" (what people read), and the agent skill's table
// (what an agent reads). A code added to one and not the others fails here, naming it and where.

const SKILL = readFileSync(new URL('../../skills/keyway/SKILL.md', import.meta.url), 'utf8');

type Entry = { kind: string; status: number | null; adminStatus?: number };
const TABLE = ERROR_CODES as Record<ErrorCode, Entry>;

/** The docs section, from its heading to the next one. */
function section(heading: string): string {
  const found = docsSection(heading);
  expect(found, `the docs have a "## ${heading}" section`).toBeDefined();
  return found!;
}

/** Rows of a markdown table whose first cell is a `code`: code -> the other cells. */
function codeRows(markdown: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const match of markdown.matchAll(/^\| `([a-z_]+)` \|(.*)\|$/gm)) {
    expect(rows.has(match[1]!), `${match[1]} listed twice`).toBe(false);
    rows.set(
      match[1]!,
      match[2]!.split('|').map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** The status cell the README must show for a code. */
function statusCell(entry: Entry): string {
  if (entry.status !== null)
    return entry.adminStatus !== undefined && entry.adminStatus !== entry.status ? `${entry.status} (admin API: ${entry.adminStatus})` : `${entry.status}`;
  return entry.adminStatus !== undefined ? `admin API: ${entry.adminStatus}` : '—';
}

const WHO: Record<string, string> = { refusal: 'agent', command: 'command', admin: 'admin API', note: 'audit only' };

/** What one list has that the other lacks, both ways, for a readable failure. */
function difference(a: Iterable<string>, b: Iterable<string>): { missing: string[]; extra: string[] } {
  const left = new Set(a);
  const right = new Set(b);
  return { missing: [...left].filter((c) => !right.has(c)).sort(), extra: [...right].filter((c) => !left.has(c)).sort() };
}

describe('the error codes, in step in the code table, the README and the agent skill', () => {
  const readme = codeRows(section('Errors the proxy returns'));
  const skill = codeRows(SKILL);

  it('the README table lists every code in src/errors/codes.ts, and no other', () => {
    expect(difference(Object.keys(TABLE), readme.keys()), 'missing: in codes.ts, not the README; extra: the other way').toEqual({ missing: [], extra: [] });
  });

  it('the README gives each code the status and the reader the code table gives it', () => {
    for (const [code, entry] of Object.entries(TABLE)) {
      const cells = readme.get(code);
      if (cells === undefined) continue; // the test above names it
      expect(cells[0], `${code}: status`).toBe(statusCell(entry));
      expect(cells[1], `${code}: who gets it`).toBe(WHO[entry.kind]);
      expect(cells[2]?.length ?? 0, `${code}: when`).toBeGreaterThan(10);
    }
  });

  it('the skill describes exactly the codes an agent can get (those with a status), with the same status', () => {
    const agentCodes = Object.entries(TABLE)
      .filter(([, e]) => e.status !== null)
      .map(([code]) => code);
    expect(difference(agentCodes, skill.keys()), 'missing: an agent can get it, the skill does not say; extra: the other way').toEqual({
      missing: [],
      extra: [],
    });
    for (const [code, cells] of skill) expect(`${cells[0]}`, `${code} in the skill`).toBe(`${TABLE[code as ErrorCode]?.status}`);
  });

  it('what the README shows an agent can get is what the skill describes', () => {
    const agentRows = [...readme].filter(([, cells]) => /^\d{3}/.test(cells[0] ?? '')).map(([code]) => code);
    expect(difference(agentRows, skill.keys())).toEqual({ missing: [], extra: [] });
  });
});
