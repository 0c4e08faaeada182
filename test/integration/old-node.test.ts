import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { supportedNode } from '../../src/cli/node-too-old.ts';
import { runProcess } from '../helpers/keyway.ts';

// The real entry on the machine's own old Node: these machines' /usr/bin/node is 20 (NOTES.md).
// What it prints must get the person running again: in this checkout, the `npm run keyway -- …` it
// names really runs the command on the pinned Node; from an installed copy, how to get Node 22.19+.

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const DIST_CLI = join(ROOT, 'dist', 'cli', 'main.js');
const SYSTEM_NODE = '/usr/bin/node';
// A user's shell: the system's folders, not npm's node_modules/.bin.
const USER_ENV = { PATH: '/usr/bin:/bin', HOME: tmpdir() };

let systemVersion: string;
let systemMajor: number;

beforeAll(async () => {
  expect(existsSync(DIST_CLI), 'dist/cli/main.js is missing: run `node scripts/build.mjs` (npm test does)').toBe(true);
  const version = await runProcess(SYSTEM_NODE, ['-p', 'process.versions.node'], USER_ENV);
  systemVersion = version.stdout.trim();
  systemMajor = Number(systemVersion.split('.')[0]);
  expect(Number.isFinite(systemMajor), `${SYSTEM_NODE} -p process.versions.node: ${version.stderr}`).toBe(true);
});

describe('keyway run by a Node older than 22.19', () => {
  it("from this checkout, from any folder: runs again on the checkout's pinned Node (issue 48), so a PATH entry or npm install -g . works", async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'keyway-cwd-'));
    const r = await runProcessIn(cwd, SYSTEM_NODE, [DIST_CLI, '--version']);
    expect(r.stderr).not.toContain('needs Node.js');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // The command's own exit status comes back through: an unknown command is a usage error there too.
    const wrong = await runProcessIn(cwd, SYSTEM_NODE, [DIST_CLI, 'no-such-command']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unknown command/);
  });

  it('from a checkout without its pinned Node (npm install not run): one line naming what to run', async () => {
    const checkout = mkdtempSync(join(tmpdir(), 'keyway-checkout-'));
    // All of dist/: main.js shares the bundle's chunks (scripts/bundle.mjs).
    cpSync(join(ROOT, 'dist'), join(checkout, 'dist'), { recursive: true });
    mkdirSync(join(checkout, 'src', 'cli'), { recursive: true });
    writeFileSync(join(checkout, 'src', 'cli', 'main.ts'), '');
    writeFileSync(join(checkout, 'package.json'), '{"name":"keyway-proxy","type":"module"}');
    const r = await runProcessIn(checkout, SYSTEM_NODE, [join(checkout, 'dist', 'cli', 'main.js'), 'status', '--json']);
    if (supportedNode(systemVersion)) {
      expect(r.stderr).not.toContain('needs Node.js');
      return;
    }
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`keyway needs Node.js 22.19 or later, but the node on PATH is v${systemMajor}.`);
    expect(r.stderr).toContain(`run \`npm install\` (in ${checkout}) to get this checkout's pinned Node 24`);
  });

  it('from an installed copy (no sources beside it): one line saying how to install Node 22.19+', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'keyway-installed-'));
    cpSync(join(ROOT, 'dist'), join(prefix, 'dist'), { recursive: true });
    writeFileSync(join(prefix, 'package.json'), '{"name":"keyway-proxy","type":"module"}');
    const r = await runProcessIn(prefix, SYSTEM_NODE, [join(prefix, 'dist', 'cli', 'main.js'), '--version']);
    if (supportedNode(systemVersion)) {
      expect(r.stderr).not.toContain('needs Node.js');
      return;
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `keyway needs Node.js 22.19 or later, but the node on PATH is v${systemVersion} (${SYSTEM_NODE}): ` +
        'install Node 22.19+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH\n',
    );
  });

  it("npm scripts' own check (scripts/check-node.mjs) gives the same ways out", async () => {
    const r = await runProcessIn(ROOT, SYSTEM_NODE, [join(ROOT, 'scripts', 'check-node.mjs')]);
    if (supportedNode(systemVersion)) {
      expect(r.code).toBe(0);
      return;
    }
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain("run `npm install` here (not with --ignore-scripts) to get this checkout's pinned Node 24");
    expect(r.stderr).toContain('or install Node 22.19+ (https://nodejs.org/en/download, or `nvm install 22`) and put it first on PATH');
  });
});

function runProcessIn(cwd: string, command: string, args: string[]) {
  // runProcess has no cwd: go through sh, whose PATH is the user's.
  const quoted = [command, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return runProcess('/bin/sh', ['-c', `cd '${cwd}' && exec ${quoted}`], USER_ENV, undefined, 60_000);
}
