// How keyway starts a process of its own (process/own-program.ts): under Node (this test, and every
// run of dist/) Node, its options and the module's file; the single executable's shape is driven
// for real by test/integration/single-executable.test.ts.
import { describe, expect, it } from 'vitest';
import { ENTRIES } from '../../scripts/bundle.mjs';
import { inSingleExecutable, nodeOptionsArgument, OWN_ROLES, ownChildCommand, ownChildFile, packagedNames } from '../../src/process/own-program.ts';

describe('own-program', () => {
  const entry = new URL('file:///opt/keyway/dist/app/workers/worker-main.js');

  it('under Node: the module file after Node and its options, nothing of the executable', () => {
    expect(inSingleExecutable()).toBe(false);
    expect(ownChildCommand(entry, 'app/workers/worker-main', ['--expose-gc'])).toEqual([
      process.execPath,
      '--expose-gc',
      '/opt/keyway/dist/app/workers/worker-main.js',
    ]);
    expect(ownChildCommand(entry, 'app/workers/worker-main')).toEqual([process.execPath, '/opt/keyway/dist/app/workers/worker-main.js']);
    expect(ownChildFile(entry)).toBe('/opt/keyway/dist/app/workers/worker-main.js');
    expect(packagedNames('dashboard')).toEqual([]);
  });

  it("Node's options for the executable: one argument, each once, none with a space", () => {
    expect(nodeOptionsArgument([])).toEqual([]);
    expect(nodeOptionsArgument(['--expose-gc', '--no-maglev', '--expose-gc'])).toEqual(['--node-options=--expose-gc --no-maglev']);
    // A space would split one option into two inside --node-options: refused, not passed on changed.
    expect(() => nodeOptionsArgument(['--title=a b'])).toThrow(/space/);
  });

  it('lists every module a child is started from (the bundle entries that are processes)', () => {
    expect([...OWN_ROLES].sort()).toEqual(['app/workers/worker-main', 'config/load-child', 'contain/inside', 'tls/bundle-child']);
    // Each is an entry of dist/ too (scripts/bundle.mjs), so the package starts it from its own file.
    for (const role of OWN_ROLES) expect(ENTRIES).toContain(role);
  });
});
