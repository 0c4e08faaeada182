import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIRST_SUPPORTED_NODE, nodeTooOldMessage, supportedNode } from '../../src/cli/node-too-old.ts';
import { DOCS } from '../helpers/docs.ts';

// The line `keyway` prints on a Node older than 22.19, by where keyway is: a checkout with its pinned
// Node, a checkout without it yet, an installed package. (test/integration/old-node.test.ts runs
// the real entry on the machine's own old Node.)

function layout(parts: { src?: boolean; pinned?: boolean }): string {
  const root = mkdtempSync(join(tmpdir(), 'keyway-root-'));
  writeFileSync(join(root, 'package.json'), '{"name":"keyway-proxy"}');
  if (parts.src) {
    mkdirSync(join(root, 'src', 'cli'), { recursive: true });
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), '');
  }
  if (parts.pinned) {
    mkdirSync(join(root, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(root, 'node_modules', '.bin', 'node'), '');
  }
  return root;
}

const check = (root: string, version = 'v20.11.1') =>
  nodeTooOldMessage({ version, execPath: '/usr/bin/node', root, argv: ['grants', 'add', "it's", '--json'] });

describe('keyway on a Node older than 22.19', () => {
  it('in a checkout with its pinned Node: the npm run keyway command to run instead, with the same arguments', () => {
    const root = layout({ src: true, pinned: true });
    expect(check(root)).toBe(
      'keyway needs Node.js 22.19 or later, but the node on PATH is v20.11.1 (/usr/bin/node): ' +
        `run this checkout's pinned Node 24 with \`npm run -s keyway -- grants add 'it'\\''s' --json\` (in ${root}), ` +
        'or install Node 22.19+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH',
    );
  });

  it('in a checkout without it (installed with --ignore-scripts, or not yet): npm install first', () => {
    const root = layout({ src: true });
    expect(check(root)).toContain(
      `run \`npm install\` (in ${root}) to get this checkout's pinned Node 24 (not with --ignore-scripts), then \`npm run -s keyway -- grants add`,
    );
  });

  it('installed from the package (no sources beside it): how to install Node 22.19+', () => {
    const root = layout({ pinned: true });
    const line = check(root);
    expect(line).toBe(
      'keyway needs Node.js 22.19 or later, but the node on PATH is v20.11.1 (/usr/bin/node): install Node 22.19+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH',
    );
  });

  it('says nothing on Node 22.19 and later; an earlier 22 is too old', () => {
    const root = layout({ src: true, pinned: true });
    for (const version of ['v22.19.0', 'v22.23.3', 'v23.0.0', 'v24.21.0', 'v30.1.2']) expect(check(root, version)).toBeUndefined();
    for (const version of ['v22.18.9', 'v22.0.0', 'v21.7.3', 'v3.99.0', 'nonsense']) expect(check(root, version)).toContain('needs Node.js 22.19 or later');
  });

  it('the docs never suggest the form of npm run whose banner an eval would run as shell', () => {
    // A checkout's keyway now runs itself on its pinned Node (issue 48): the docs need not name npm run at all.
    expect(DOCS.match(/npm run keyway --/g) ?? []).toEqual([]);
  });
});

// One floor, said in four places that cannot import each other: package.json's engines (what npm
// and a reader see), the CLI's check (node-too-old.ts), npm scripts' check (scripts/check-node.mjs),
// and what CI runs the unit tests and the built CLI's smoke on (.ci/run reads engines). It is no
// lower than what keyway's own dependencies ask for.
describe('the oldest Node keyway runs on', () => {
  const root = join(import.meta.dirname, '..', '..');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
  const floor = `${FIRST_SUPPORTED_NODE.major}.${FIRST_SUPPORTED_NODE.minor}.0`;

  it("is package.json's engines, and npm scripts' check says the same", () => {
    expect(pkg.engines.node).toBe(`>=${floor}`);
    const script = readFileSync(join(root, 'scripts', 'check-node.mjs'), 'utf8');
    expect(script).toContain(`const FLOOR = { major: ${FIRST_SUPPORTED_NODE.major}, minor: ${FIRST_SUPPORTED_NODE.minor} };`);
    expect(supportedNode(`v${floor}`)).toBe(true);
    expect(supportedNode(process.version)).toBe(true);
  });

  it('is admitted by the engines of every package keyway ships with (package-lock.json, dev tools left out)', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; engines?: { node?: string } | string[] }>;
    };
    const refusing: string[] = [];
    let read = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || entry.dev || entry.devOptional || Array.isArray(entry.engines)) continue;
      const range = entry.engines?.node;
      if (range === undefined) continue;
      read++;
      if (!admits(range, floor)) refusing.push(`${path.replace(/^.*node_modules\//, '')}: ${range}`);
    }
    expect(read).toBeGreaterThan(10);
    expect(refusing).toEqual([]);
  });

  it("reads engines' ranges as npm does, for the forms the lock holds", () => {
    expect(admits('>=22.19.0', '22.19.0')).toBe(true);
    expect(admits('>=22.19.0', '22.18.0')).toBe(false);
    expect(admits('>= 16.0.0', '22.19.0')).toBe(true);
    expect(admits('^16 || ^18 || >=20', '22.19.0')).toBe(true);
    expect(admits('^16 || ^18', '22.19.0')).toBe(false);
    expect(admits('20 || >=22', '21.1.0')).toBe(false);
    expect(admits('20 || >=22', '20.9.1')).toBe(true);
    expect(admits('>= 10.x', '22.19.0')).toBe(true);
    expect(admits('>=20 <22', '22.19.0')).toBe(false);
    expect(() => admits('node>=1', '22.19.0')).toThrow(/cannot read/);
  });
});

type Version = readonly [number, number, number];

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether an engines range (alternatives by ||, comparators by spaces) admits `version`; a form it cannot read throws. */
function admits(range: string, version: string): boolean {
  const v = version.split('.').map(Number) as unknown as Version;
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/(>=|<=|>|<|\^|~|=)\s+/g, '$1')
      .split(/\s+/)
      .every((comparator) => holds(comparator, v)),
  );
}

function holds(comparator: string, v: Version): boolean {
  const m = /^(>=|<=|>|<|\^|~|=)?v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?$/.exec(comparator);
  if (!m) throw new Error(`a range this test cannot read: ${comparator}`);
  const [, op, major, minor, patch] = m;
  const given = (part: string | undefined) => part !== undefined && part !== 'x';
  const low: Version = [Number(major), given(minor) ? Number(minor) : 0, given(patch) ? Number(patch) : 0];
  switch (op) {
    case '>=':
      return compare(v, low) >= 0;
    case '>':
      return compare(v, low) > 0;
    case '<':
      return compare(v, low) < 0;
    case '<=':
      return compare(v, low) <= 0;
    case '^':
      return compare(v, low) >= 0 && v[0] === low[0];
    case '~':
      return compare(v, low) >= 0 && v[0] === low[0] && (!given(minor) || v[1] === low[1]);
    default:
      // A bare or `=` version: each part given must match (20 is any 20.x).
      return v[0] === low[0] && (!given(minor) || v[1] === low[1]) && (!given(patch) || v[2] === low[2]);
  }
}
