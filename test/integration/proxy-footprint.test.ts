import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, buildConnector, requestUrl } from '../../src/net/undici.ts';
import { type ChildProxy, SRC_CLI, startChildProxy } from '../helpers/child-proxy.ts';
import { cleanEnv, makeHome } from '../helpers/keyway.ts';

// What the long-running proxy process loads. Every module loaded stays in memory for days, and the
// issue's RSS budget (120 MiB under load) is tight: src/net/undici.ts reaches into undici's files to
// avoid its whole index, and node:http is loaded without its ESM namespace (src/net/node-http.ts).
// These tests fail when a change or an undici upgrade undoes that.

describe('the undici parts keyway loads', () => {
  it('are the very classes undici exports, with the request API mixed in', () => {
    expect(Agent).toBe(undici.Agent);
    expect(buildConnector).toBe(undici.buildConnector);
    const agent = new Agent();
    expect(typeof agent.stream).toBe('function');
    expect(typeof agent.request).toBe('function');
    void agent.close();
  });

  it('requestUrl sends the path and query to the URL origin', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('pong');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const response = await requestUrl(`http://127.0.0.1:${port}/token?x=1`, { method: 'POST', body: 'a=b' });
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toBe('pong');
      expect(seen).toEqual(['POST /token?x=1']);
    } finally {
      server.close();
    }
  });
});

/**
 * Node built-ins the proxy does not load at its start (src/builtins.ts): zlib waits for a first
 * encoded answer; the rest came only from the ES namespace of node:util, which reads every lazy export.
 */
const UNNEEDED_BUILTINS = ['zlib', 'internal/util/diff', 'internal/util/trace_sigint'];

describe('the proxy process', () => {
  it("loads neither undici's index nor Node's own bundled undici, nor pg (loaded on a first database connection), nor tldts (by a first wildcard to check), nor the admin server (by an admin listener), nor node-forge (the CA and leaves are DER: tls/der.ts), nor Node's zlib and what util's namespace would pull in", () => {
    // A fresh Node loads the composition root the way `keyway start` does, then lists what came in
    // (CommonJS from require's cache; keyway's own ES modules as a resolve hook saw them).
    const app = fileURLToPath(new URL('../../src/app/index.ts', import.meta.url));
    // The warm-up (warm-up/) runs in the proxy process before it serves: what it loads stays too.
    const warmUp = fileURLToPath(new URL('../../src/warm-up/warm-up.ts', import.meta.url));
    const script = `
      const esm = [];
      require('node:module').registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); esm.push(r.url); return r; } });
      Promise.all([import(${JSON.stringify(app)}), import(${JSON.stringify(warmUp)})]).then(() => {
        const files = Object.keys(require.cache);
        console.log(JSON.stringify({
          undiciFiles: files.filter((p) => p.includes('/node_modules/undici/')).length,
          undiciIndex: files.some((p) => p.endsWith('/node_modules/undici/index.js')),
          nodeBundledUndici: process.moduleLoadList.includes('NativeModule internal/deps/undici/undici'),
          pg: files.some((p) => p.includes('/node_modules/pg/')),
          tldts: files.some((p) => p.includes('/node_modules/tldts')),
          forge: files.filter((p) => p.includes('/node_modules/node-forge/')).length,
          ownModules: esm.filter((u) => u.includes('/src/')).length,
          admin: esm.filter((u) => u.includes('/src/admin/')),
          builtins: ${JSON.stringify(UNNEEDED_BUILTINS)}.filter((name) => process.moduleLoadList.includes('NativeModule ' + name)),
        }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(out).toEqual({
      undiciFiles: expect.any(Number),
      undiciIndex: false,
      nodeBundledUndici: false,
      pg: false,
      tldts: false,
      forge: 0,
      ownModules: expect.any(Number),
      admin: [],
      builtins: [],
    });
    expect(out['undiciFiles']).toBeGreaterThan(3); // the agent and what it needs did load
    expect(out['ownModules']).toBeGreaterThan(50); // the hook did see keyway's own modules load
  });
});

/**
 * A child proxy with `preload` (a module's text, given the file it may note things in) imported
 * first by every Node process of the run (NODE_OPTIONS). `cleanup` removes its home and the notes.
 */
async function proxyWithPreload(
  preload: (notes: string) => string,
  extraEnv: Record<string, string> = {},
): Promise<{ proxy: ChildProxy; home: string; notes: string; env: Record<string, string>; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-preload-'));
  const notes = join(dir, 'notes.txt');
  const module = join(dir, 'preload.mjs');
  writeFileSync(module, preload(notes));
  const home = makeHome();
  const env = { ...cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), ...extraEnv }), NODE_OPTIONS: `--import=${module}` };
  const proxy = await startChildProxy({ home, env });
  const cleanup = () => {
    rmSync(home, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  return { proxy, home, notes, env, cleanup };
}

/** The notes a preload wrote as `PID VALUE` lines, by pid. */
function notesByPid(file: string): Map<string, string> {
  return new Map(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
}

describe("the proxy process's Dates", () => {
  it("write their ISO text with keyway's arithmetic, not V8's date cache (src/iso-time.ts), from the start", async () => {
    // Noted as each process ends: its pid and whether its toISOString was V8's own.
    const { proxy, notes, cleanup } = await proxyWithPreload(
      (file) => `import { appendFileSync } from 'node:fs';
process.on('exit', () => appendFileSync(${JSON.stringify(file)}, process.pid + ' ' + String(Date.prototype.toISOString).includes('[native code]') + '\\n'));
`,
    );
    try {
      expect(await proxy.stop()).toBe(0);
      const byPid = notesByPid(notes);
      expect(byPid.get(String(proxy.child.pid))).toBe('false'); // not V8's own
    } finally {
      cleanup();
    }
  });
});

describe("the proxy process's code", () => {
  it('is not read back from the compile cache, which a `keyway` command run beside it does use (cli/compile-cache.ts)', async () => {
    // A user's home with a ~/.cache, where keyway keeps its compile cache. Noted as each process
    // ends: its pid and the compile cache it used.
    const user = mkdtempSync(join(tmpdir(), 'keyway-user-'));
    mkdirSync(join(user, '.cache'), { mode: 0o700 });
    const { proxy, notes, env, cleanup } = await proxyWithPreload(
      (file) => `import { appendFileSync } from 'node:fs';
import { getCompileCacheDir } from 'node:module';
process.on('exit', () => appendFileSync(${JSON.stringify(file)}, process.pid + ' ' + (getCompileCacheDir() ?? 'none') + '\\n'));
`,
      { HOME: user },
    );
    try {
      const command = spawnSync(process.execPath, [SRC_CLI, '--version'], { env, encoding: 'utf8' });
      expect(command.status).toBe(0);
      expect(await proxy.stop()).toBe(0);
      const byPid = notesByPid(notes);
      expect(byPid.get(String(command.pid))).toContain(join(user, '.cache', 'keyway', 'compile-cache')); // the command did
      expect(byPid.get(String(proxy.child.pid))).toBe('none'); // the proxy did not
    } finally {
      cleanup();
      rmSync(user, { recursive: true, force: true });
    }
  });
});

describe('the CA bundle written at a first start', () => {
  it('is written by a child: the proxy process never reads the OS store, which Node would keep (~4 MiB)', async () => {
    // Noted: the pid of each process that reads the store.
    const { proxy, home, notes, cleanup } = await proxyWithPreload(
      (file) => `import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import tls from 'node:tls';
const read = tls.getCACertificates;
tls.getCACertificates = function (type, ...rest) {
  if (type === 'system') appendFileSync(${JSON.stringify(file)}, process.pid + '\\n');
  return read.call(this, type, ...rest);
};
syncBuiltinESMExports();
`,
    );
    try {
      const pids = existsSync(notes) ? readFileSync(notes, 'utf8').trim().split('\n') : [];
      expect(pids.length).toBeGreaterThan(0); // the child did read it (and the preload works)
      expect(pids).not.toContain(String(proxy.child.pid));
      const bundle = readFileSync(join(home, 'certs', 'bundle.pem'), 'utf8');
      const system = getCACertificates('system');
      const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s+/g, '');
      expect(system.length).toBeGreaterThan(0);
      expect(body(bundle)).toContain(body(system[0]!));
      expect(body(bundle).endsWith(body(readFileSync(join(home, 'certs', 'ca.pem'), 'utf8')))).toBe(true);
    } finally {
      expect(await proxy.stop()).toBe(0);
      cleanup();
    }
  });
});
