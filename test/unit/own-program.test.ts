// How keyway starts a process of its own (process/own-program.ts): under Node (this test, and every
// run of dist/) Node, its options and the module's file; the single executable's shape is driven
// for real by test/integration/single-executable.test.ts.
import { describe, expect, it } from 'vitest';
import { ENTRIES, MODULE_URL_USERS } from '../../scripts/bundle.mjs';
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

  it('knows every module that reads from beside its own file (import.meta.url)', () => {
    // In the single executable these URLs name nothing on disk (scripts/release/sea-bundle.mjs): each
    // lookup below goes through process/own-program.ts there, or is a createRequire the bundle
    // rewrites. A new one must be made to work there too (and run by single-executable.test.ts),
    // then listed here.
    expect(Object.keys(MODULE_URL_USERS).sort()).toEqual([
      'admin/dashboard-files.ts', // packagedNames / packagedFile: the dashboard/ assets
      'app/workers/pool.ts', // ownChildCommand
      'builtins.ts', // createRequire, rewritten
      'cli/main.ts', // the checkout's pinned Node: none in the executable
      'config/domain-breadth.ts', // createRequire, rewritten
      'config/load-isolated.ts', // runOneShotChild -> ownChildCommand
      'contain/program-reach.ts', // ownChildFile
      'contain/run.ts', // ownChildCommand, ownChildFile
      'net/node-http.ts', // createRequire, rewritten
      'net/undici.ts', // createRequire, rewritten
      'paths.ts', // exampleConfigText: the config/keyway.example.yaml asset
      'tls/bundle-in-child.ts', // runOneShotChild -> ownChildCommand
      'tls/forge.ts', // createRequire, rewritten
      'tls/pkcs12.ts', // createRequire, rewritten
      'version.ts', // the build stamp
    ]);
  });
});
