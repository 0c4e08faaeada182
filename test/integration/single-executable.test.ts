// The single executable (issue 91): release/keyway-linux-x64, Node and keyway in one file, run on a
// PATH that holds no `node` (every program of the system's bin folders but node, linked into one
// folder): init, start under its runtime settings with proxy.workers: 2 (each worker the same file
// with its role), a granted request through curl to a loopback upstream with the secret injected,
// a Cedar policy's refusal (Cedar's WASM is an asset), the dashboard's files, and run --contain (its
// helper inside the namespaces is the same file too). Skipped only when the executable has not been
// built: `npm run release` (or `-- --only=linux-x64`) builds it, and .ci/run does before the tests.
// The CLI suites run against it with KEYWAY_CLI_BIN=release/keyway-linux-x64 (test/helpers/keyway.ts).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { runProcess } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';
import { ROLE_FLAG } from '../../src/process/own-program.ts';
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-runtime.ts';

const BIN = fileURLToPath(new URL('../../release/keyway-linux-x64', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const TOKEN = `${CANARY}-sea`;
const BOT_KEY = 'bot-key-sea';
// The upstream's own loopback address, port 443: run --contain reaches a granted host on its usual port.
const API_ADDRESS = `127.${100 + ((process.pid + 37) % 100)}.3.4`;

describe.skipIf(!existsSync(BIN) || process.arch !== 'x64')('the single executable, with no node on PATH', () => {
  const work = mkdtempSync(join(tmpdir(), 'keyway-sea-test-'));
  const bin = join(work, 'bin');
  const home = join(work, 'home');
  const project = join(work, 'project');
  const seen: Array<{ path: string; authorization: string | undefined }> = [];
  const outputs: string[] = [];
  let upstream: Server;
  let proxy: ChildProxy;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Every program the tests use but Node: the executable must need none. Reachable by every user:
    // run --contain as root runs its command (and looks up its programs) as an unprivileged one.
    chmodSync(work, 0o755);
    mkdirSync(bin, { mode: 0o755 });
    for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (/^node(js)?$/.test(name) || existsSync(join(bin, name))) continue;
        symlinkSync(join(dir, name), join(bin, name));
      }
    }
    mkdirSync(project);
    upstream = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      const granted = req.headers.authorization === `Bearer ${TOKEN}`;
      res.writeHead(granted ? 200 : 401).end(granted ? 'granted' : 'no');
    });
    upstream.listen(443, API_ADDRESS);
    await once(upstream, 'listening');
    env = { PATH: bin, HOME: work, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: TOKEN, BOT_KEY };
  }, 60_000);

  afterAll(async () => {
    if (proxy !== undefined && proxy.child.exitCode === null) expect(await proxy.stop()).toBe(0);
    for (const text of [...outputs, proxy?.stdout() ?? '', proxy?.stderr() ?? '']) expect(findLeak(text, TOKEN)).toBeUndefined();
    upstream?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const keyway = async (args: string[], extra: Record<string, string> = {}, cwd = work) => {
    const r = await runProcess(BIN, args, { ...env, ...extra }, undefined, 60_000, cwd);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  it('names its version and commit', async () => {
    const r = await keyway(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${PACKAGE.version.replaceAll('.', '\\.')} \\(commit [0-9a-f]{12}(-dirty)?\\)\\n$`));
    expect(r.stderr).toBe(''); // no warning: the code cache is accepted
  });

  it('init writes the example config (an asset of the executable) and the CA', async () => {
    const r = await keyway(['init', '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(home, 'config', 'keyway.yaml'), 'utf8')).toBe(readFileSync(new URL('../../config/keyway.example.yaml', import.meta.url), 'utf8'));
    expect(existsSync(join(home, 'certs', 'ca.pem'))).toBe(true);
  });

  it('start with proxy.workers: 2: each worker is the same file, and a granted request through curl gets the secret', async () => {
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { workers: 2, upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { 'api.example.test': API_ADDRESS } },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['api'] } },
      }),
    );
    // A Cedar policy: its engine's WASM is one of the executable's assets, loaded in each worker.
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(
      join(home, 'policies', 'main.cedar'),
      '@id("no-admin")\nforbid (principal, action == Action::"request", resource)\nwhen { context.path_lower like "/admin*" };\n',
      { mode: 0o600 },
    );
    proxy = await startChildProxy({ cli: BIN, home, env });
    // Started: its config was loaded and its CA bundle written by one-shot children, the same file
    // with the roles config/load-child and tls/bundle-child (a failure there fails the start).
    // Re-executed under start's runtime settings: the same file, Node's options as one argument.
    const own = readFileSync(`/proc/${proxy.child.pid}/cmdline`, 'utf8').split('\0');
    expect(own.slice(0, 2)).toEqual([BIN, `--node-options=${PROXY_NODE_FLAGS.join(' ')}`]);
    const workers = await waitFor(() => {
      const found = childrenOf(proxy.child.pid!).filter((argv) => argv.includes(ROLE_FLAG));
      return found.length === 2 ? found : undefined;
    }, 'two workers');
    for (const argv of workers) {
      expect(argv[0]).toBe(BIN);
      expect(argv.slice(-2)).toEqual([ROLE_FLAG, 'app/workers/worker-main']);
    }
    for (let i = 0; i < 4; i++) {
      const r = await runProcess('curl', ['-sS', '--fail', `https://api.example.test/v1/curl/${i}`], {
        PATH: bin,
        HTTPS_PROXY: `http://bot:${BOT_KEY}@127.0.0.1:${proxy.port}`,
        CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem'),
      });
      outputs.push(r.stdout, r.stderr);
      expect(r.stdout, r.stderr).toBe('granted');
    }
    expect(seen.filter((s) => s.path.startsWith('/v1/curl/')).map((s) => s.authorization)).toEqual(Array(4).fill(`Bearer ${TOKEN}`));
    // Cedar's forbid, judged by its engine inside the executable: refused before the upstream.
    const before = seen.length;
    const refused = await runProcess('curl', ['-sS', '-w', '%{http_code}', '-o', '/dev/null', 'https://api.example.test/admin/x'], {
      PATH: bin,
      HTTPS_PROXY: `http://bot:${BOT_KEY}@127.0.0.1:${proxy.port}`,
      CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem'),
    });
    expect(refused.stdout, refused.stderr).toBe('403');
    expect(seen.length).toBe(before);
  });

  it('serves the dashboard from its assets', async () => {
    const running = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const base = `http://127.0.0.1:${running.admin.port}`;
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe(readFileSync(new URL('../../src/admin/dashboard/index.html', import.meta.url), 'utf8'));
    for (const name of readdirSync(new URL('../../src/admin/dashboard/', import.meta.url))) {
      const asset = await fetch(`${base}/assets/${name}`);
      expect(asset.status, name).toBe(200);
    }
    expect((await fetch(`${base}/assets/../package.json`)).status).not.toBe(200);
  });

  it('refuses a role that is not one of its own child programs', async () => {
    for (const role of ['../../etc/passwd', 'cli/main', '']) {
      const r = await keyway([ROLE_FLAG, role]);
      expect(r.code, role).toBe(2);
      expect(r.stderr).toContain(`${ROLE_FLAG} names one of keyway's own child programs`);
    }
  });

  it('run --contain: the command in its namespaces gets the secret injected, with no proxy setting', async () => {
    const r = await keyway(
      ['run', '--contain', '--agent', 'bot', '--', 'curl', '-sS', 'https://api.example.test/v1/contained'],
      { KEYWAY_HOME: home },
      project,
    );
    expect(r.stdout, r.stderr).toBe('granted');
    expect(r.code).toBe(0);
    expect(seen.at(-1)).toEqual({ path: '/v1/contained', authorization: `Bearer ${TOKEN}` });
  }, 60_000);
});

/** The command lines of `pid`'s children (Linux /proc). */
function childrenOf(pid: number): string[][] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.map((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      return [];
    }
  });
}
