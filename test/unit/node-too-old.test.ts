import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeTooOldMessage } from '../../src/cli/node-too-old.ts';
import { DOCS } from '../helpers/docs.ts';

// The line `keyway` prints on a Node older than 22, by where keyway is: a checkout with its pinned
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

describe('keyway on a Node older than 22', () => {
  it('in a checkout with its pinned Node: the npm run keyway command to run instead, with the same arguments', () => {
    const root = layout({ src: true, pinned: true });
    expect(check(root)).toBe(
      'keyway needs Node.js 22 or later, but the node on PATH is v20.11.1 (/usr/bin/node): ' +
        `run this checkout's pinned Node 24 with \`npm run -s keyway -- grants add 'it'\\''s' --json\` (in ${root}), ` +
        'or install Node 22+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH',
    );
  });

  it('in a checkout without it (installed with --ignore-scripts, or not yet): npm install first', () => {
    const root = layout({ src: true });
    expect(check(root)).toContain(
      `run \`npm install\` (in ${root}) to get this checkout's pinned Node 24 (not with --ignore-scripts), then \`npm run -s keyway -- grants add`,
    );
  });

  it('installed from the package (no sources beside it): how to install Node 22+', () => {
    const root = layout({ pinned: true });
    const line = check(root);
    expect(line).toBe(
      'keyway needs Node.js 22 or later, but the node on PATH is v20.11.1 (/usr/bin/node): install Node 22+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH',
    );
  });

  it('says nothing on Node 22 and later', () => {
    const root = layout({ src: true, pinned: true });
    for (const version of ['v22.0.0', 'v24.21.0', 'v30.1.2']) expect(check(root, version)).toBeUndefined();
    expect(check(root, 'v21.7.3')).toContain('needs Node.js 22');
  });

  it('the docs never suggest the form of npm run whose banner an eval would run as shell', () => {
    // A checkout's keyway now runs itself on its pinned Node (issue 48): the docs need not name npm run at all.
    expect(DOCS.match(/npm run keyway --/g) ?? []).toEqual([]);
  });
});
