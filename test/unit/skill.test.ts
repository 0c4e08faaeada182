import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/index.ts';
import { describeCommands } from '../../src/cli/commands/completion.ts';
import { STATUS_BY_CODE } from '../../src/errors/index.ts';

// skills/keyway/SKILL.md tells an agent what keyway's refusals mean and which commands to use or ask
// for. It must stay true: every error code in keyway's one code table is described (with its
// status), no code it names is unknown, and every `keyway COMMAND [SUBCOMMAND]` it shows exists.

const SKILL = fileURLToPath(new URL('../../skills/keyway/SKILL.md', import.meta.url));
const text = readFileSync(SKILL, 'utf8');
const front = /^---\n([\s\S]*?)\n---\n/.exec(text);
const body = front ? text.slice(front[0].length) : text;

/** Every inline code span and fenced block: where commands and codes are written. */
function codeSpans(markdown: string): string[] {
  const fenced = [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  const inline = [...markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...fenced, ...inline];
}

describe('skills/keyway/SKILL.md', () => {
  it('has Agent Skills front matter: name (the folder name) and a description', () => {
    expect(front, 'YAML front matter between --- lines').not.toBeNull();
    const meta = parseYaml(front![1]!) as Record<string, unknown>;
    expect(meta['name']).toBe('keyway');
    expect(meta['name']).toMatch(/^[a-z0-9-]{1,64}$/);
    expect(typeof meta['description']).toBe('string');
    expect((meta['description'] as string).length).toBeGreaterThan(50);
    expect((meta['description'] as string).length).toBeLessThanOrEqual(1024);
  });

  it('describes every error code in the code table, with its status, and no other', () => {
    const rows = [...body.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(Object.fromEntries(rows)).toEqual(STATUS_BY_CODE);
    expect(rows.length).toBe(Object.keys(STATUS_BY_CODE).length); // each once
  });

  it('names only codes that exist wherever it quotes X-Keyway-Error or a code', () => {
    const known = new Set(Object.keys(STATUS_BY_CODE));
    for (const match of body.matchAll(/X-Keyway-Error: `?([a-z_<>]+)/g)) {
      if (match[1] !== '<code>') expect(known, match[0]).toContain(match[1]);
    }
    for (const match of body.matchAll(/keyway fetch: ([A-Za-z_]+):/g)) expect(['CODE', ...known]).toContain(match[1]);
  });

  it('shows only commands and subcommands that exist', async () => {
    const commands = new Map((await describeCommands()).map((c) => [c.name, c]));
    expect([...commands.keys()]).toEqual(COMMANDS.map((c) => c.name));
    const named: string[] = [];
    for (const span of codeSpans(body)) {
      for (const match of span.matchAll(/(?<![\w.-])keyway ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
        const [, name, sub] = match;
        named.push(match[0]);
        const command = commands.get(name!);
        expect(command, `\`${match[0]}\` in SKILL.md: no command "${name}"`).toBeDefined();
        // A lowercase word after a command with subcommands must be one of them (after one
        // without, it is an argument: `keyway connect github`).
        if (sub !== undefined && command!.subcommands.length > 0) expect(command!.subcommands, `\`${match[0]}\` in SKILL.md`).toContain(sub);
      }
    }
    // What an agent most needs is there: fetch, doctor, and the two commands only a human can run.
    for (const wanted of ['keyway fetch', 'keyway doctor', 'keyway connect', 'keyway agents lease']) {
      expect(
        named.some((n) => n.startsWith(wanted)),
        wanted,
      ).toBe(true);
    }
  });
});
