import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { supportedNode } from '../../src/cli/node-too-old.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { runProcess } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// What `npm pack` makes must install and run on a clean prefix with nothing but Node: pack a clean
// copy of the checkout (its `prepare` builds dist/), install the tarball globally into a temporary
// prefix, and use the installed `keyway` from a folder that is not the checkout, with its own HOME:
// on Node 22 (the engines floor) and 24 alike (issue 91).
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

// Packed once; installed with `npm install -g` twice, each with its own Node first on PATH (npm itself
// runs on it, and the installed `keyway` finds it through its `#!/usr/bin/env node`): the floor that
// package.json's engines names (fetched as .ci/run does, from the npm registry's `node` package) and
// the pinned Node 24 the tests run on.
const ENGINES_FLOOR = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node.replace(/^>=/, '');
const NODES = [
  { label: `the engines floor, Node ${ENGINES_FLOOR}`, node: floorNode },
  { label: `the pinned Node ${process.versions.node}`, node: async () => process.execPath },
];

describe('the packed package, installed on a clean prefix', () => {
  const work = mkdtempSync(join(tmpdir(), 'keyway-pack-'));
  let tarball = '';
  let commit = '';

  beforeAll(async () => {
    const env = baseEnv(process.execPath, join(work, 'pack-home'));
    mkdirSync(join(work, 'pack-home'));
    // A clean clone: the files git knows (committed or not yet), without dist/, so the pack's own
    // `prepare` must build it; node_modules linked for the compiler. Packing in the checkout itself
    // would rewrite the dist/ other test files are running.
    const clone = join(work, 'clone');
    const listed = await runProcess('git', ['-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], env);
    expect(listed.code, listed.stderr).toBe(0);
    for (const file of listed.stdout.split('\0').filter((f) => f !== '' && existsSync(join(ROOT, f)))) {
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(clone, file));
    }
    expect(existsSync(join(clone, 'dist'))).toBe(false);
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    // The copy has no .git: the commit its build stamps (scripts/build-stamp.mjs) is named to it.
    const head = await runProcess('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'], env);
    commit = head.stdout.trim();
    const packed = await runProcess(
      'npm',
      ['pack', '--pack-destination', work, '--no-update-notifier'],
      { ...env, KEYWAY_BUILD_COMMIT: commit },
      undefined,
      60_000,
      clone,
    );
    expect(packed.code, packed.stderr).toBe(0);
    tarball = join(work, `${PACKAGE.name}-${PACKAGE.version}.tgz`);
    expect(existsSync(tarball)).toBe(true);
  }, 200_000);

  describe.each(NODES)('with $label', ({ node: whichNode }) => {
    const own = mkdtempSync(join(work, 'node-'));
    const prefix = join(own, 'prefix');
    const home = join(own, 'home');
    const cwd = join(own, 'elsewhere');
    let node = '';
    let env: Record<string, string> = {};
    const keyway = (args: string[]) => runProcess(join(prefix, 'bin', 'keyway'), args, env);
    let upstream: TestUpstream;
    let proxy: ChildProcess | undefined;

    beforeAll(async () => {
      mkdirSync(home);
      mkdirSync(cwd);
      node = await whichNode();
      env = baseEnv(node, home);
      upstream = await startUpstream();
      // Offline from the npm cache when it holds the dependencies, the registry otherwise (npm ci
      // caches tarballs, not the metadata a tarball install asks for): 4-12 s here. Killed at 120 s;
      // --loglevel=http puts each fetch in the stderr the failure prints (a hang once showed nothing).
      const started = Date.now();
      const installed = await runProcess(
        'npm',
        ['install', '-g', '--prefix', prefix, '--prefer-offline', '--loglevel=http', '--no-audit', '--no-fund', '--no-update-notifier', tarball],
        env,
        undefined,
        120_000,
      );
      expect(installed.code, `npm install -g: ${Date.now() - started} ms\n${installed.stderr}`).toBe(0);
    }, 200_000);

    afterAll(async () => {
      if (proxy && proxy.exitCode === null) {
        proxy.kill('SIGKILL');
        await once(proxy, 'exit');
      }
      await upstream?.close();
    });

    it('is named keyway-proxy and ships no sources or tests', () => {
      expect(PACKAGE.name).toBe('keyway-proxy');
      const installedAt = join(prefix, 'lib', 'node_modules', 'keyway-proxy');
      const top = readdirSync(installedAt).sort();
      expect(top).toEqual(expect.arrayContaining(['config', 'dist', 'package.json']));
      expect(top).not.toContain('src');
      expect(top).not.toContain('test');
      // The dashboard's pages, copied into dist/ by the build (they are not TypeScript).
      expect(existsSync(join(installedAt, 'dist', 'admin', 'dashboard', 'index.html'))).toBe(true);
    });

    it('prints its version, initialises ~/.keyway, starts on that Node and injects a request', async () => {
      const version = await keyway(['--version']);
      expect(version.code, version.stderr).toBe(0);
      // The commit the tarball was built from, stamped into dist/ by the build: an install keeps it.
      expect(version.stdout.trim()).toBe(`${PACKAGE.version} (commit ${commit})`);

      const init = await keyway(['init']);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toContain(join(home, '.keyway', 'certs', 'ca.pem'));
      writeFileSync(
        join(home, '.keyway', 'config', 'keyway.yaml'),
        stringify({
          proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { 'api.example.test': '127.0.0.1' } },
          grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } },
        }),
      );

      const port = await freePort();
      const child = spawn(join(prefix, 'bin', 'keyway'), ['start', '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0'], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proxy = child;
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout!.resume();
      await waitFor(() => (stderr.includes('keyway proxy on') ? true : child.exitCode !== null ? fail(stderr) : undefined), 'keyway start', 20_000);
      // The proxy is this Node's process (the shebang found it first on PATH), not the test runner's.
      expect(realpathSync(`/proc/${child.pid}/exe`)).toBe(realpathSync(node));

      const before = upstream.seen.length;
      const curl = await runProcess('curl', ['-sS', `https://api.example.test:${upstream.port}/echo`], {
        PATH: env['PATH'] ?? '',
        HOME: home,
        HTTPS_PROXY: `http://127.0.0.1:${port}`,
        CURL_CA_BUNDLE: join(home, '.keyway', 'certs', 'bundle.pem'),
      });
      expect(curl.stderr).toBe('');
      const seen = upstream.seen.slice(before);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(curl.stdout).not.toContain(CANARY);

      const status = await keyway(['status', '--json']);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: child.pid, requests: 1 });
      const exited = once(child, 'exit');
      const stop = await keyway(['stop']);
      expect(stop.code, stop.stderr).toBe(0);
      expect((await exited)[0]).toBe(0);
      expect(stderr).not.toContain(CANARY);
      expect(readdirSync(cwd)).toEqual([]);
    });

    it('run by a node before 22.19 (first on PATH), says in one line what to do', async () => {
      // The system node of these machines is 20 (NOTES.md); on a machine whose /usr/bin/node is newer
      // the installed command simply works, which is checked instead.
      const system = await runProcess('/usr/bin/node', ['-p', 'process.versions.node'], env).catch(() => undefined);
      const version = system?.stdout.trim();
      const result = await runProcess(join(prefix, 'bin', 'keyway'), ['--version'], { ...env, PATH: '/usr/bin:/bin' });
      if (version !== undefined && !supportedNode(version)) {
        expect(result.code).toBe(1);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toContain(`keyway needs Node.js 22.19 or later, but the node on PATH is v${version}`);
      } else if (system === undefined) {
        expect(result.code).not.toBe(0); // no node there at all: env(1) says so
      } else {
        expect(result.stdout.trim()).toBe(`${PACKAGE.version} (commit ${commit})`);
      }
    });
  });
});

/**
 * The environment of npm and the installed keyway: `node`'s folder first, then the system's tools
 * (curl), nothing else; its own HOME; the canary as the grant's secret.
 */
function baseEnv(node: string, home: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${dirname(node)}:/usr/bin:/bin`,
    HOME: home,
    npm_config_cache: process.env['npm_config_cache'] ?? '',
    GITHUB_TOKEN: CANARY,
  };
  // How this machine's npm reaches its registry (its own CA, a mirror, a proxy): npm keeps that in a
  // global npmrc, which `--prefix` moves into the empty prefix. Without the CA every fetch the cache
  // cannot answer (a dependency's newer release) failed TLS and was retried for minutes.
  // NODE_EXTRA_CA_CERTS: a machine may trust its registry's CA through Node rather than npm's cafile.
  for (const key of [
    'npm_config_cafile',
    'npm_config_registry',
    'npm_config_proxy',
    'npm_config_https_proxy',
    'npm_config_noproxy',
    'npm_config_strict_ssl',
    'NODE_EXTRA_CA_CERTS',
  ]) {
    const value = process.env[key];
    if (value) env[key] = value;
  }
  return env;
}

/**
 * The engines floor's Node binary, from the npm registry's `node` package through npx, as .ci/run
 * gets it: with the user's HOME, so the npx cache .ci/run filled is the one found.
 */
async function floorNode(): Promise<string> {
  const found = await runProcess(
    'npx',
    ['-y', '-p', `node@${ENGINES_FLOOR}`, 'node', '-p', 'process.execPath'],
    baseEnv(process.execPath, process.env['HOME'] ?? tmpdir()),
    undefined,
    120_000,
  );
  expect(found.code, found.stderr).toBe(0);
  const path = found.stdout.trim();
  const version = await runProcess(path, ['-p', 'process.versions.node'], {});
  expect(version.stdout.trim()).toBe(ENGINES_FLOOR);
  return path;
}

function fail(stderr: string): never {
  throw new Error(`keyway start exited: ${stderr}`);
}
