// keyway run --contain (issue 35): the command runs in its own user, network and mount namespaces
// where keyway is the only way out, with no proxy variable and no CA option. curl, Python requests
// and Node's fetch reach the granted host with the credential injected; the ways around (a raw IP,
// a host no grant covers, another port, IPv6, keyway's admin port, a way back into the host's
// network namespace) lead nowhere; and where containment cannot be set up, the command is not run.
// Needs root or unprivileged user namespaces (CI runs as root); the upstream listens on port 443 of
// this test's own loopback address, where keyway's proxy.hosts sends the name.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { CLI, cliCommand, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-contained`;
const API_ADDRESS = `127.${100 + (process.pid % 100)}.1.2`;

describe('keyway run --contain', () => {
  let upstream: Server;
  /** The same API on a port other than 443, as some services are (served under --port). */
  let upstreamOn8443: Server;
  /** A Go client (its own resolver, its own TLS stack), built for the test. */
  let goClient: string;
  const workDir = mkdtempSync(join(tmpdir(), 'keyway-contain-test-'));
  let proxy: TestProxy;
  const seen: Array<{ path: string; authorized: boolean }> = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
      seen.push({ path: req.url ?? '', authorized });
      res.writeHead(authorized ? 200 : 401).end(authorized ? 'ok' : 'no');
    });
    upstream.listen(443, API_ADDRESS);
    await once(upstream, 'listening');
    upstreamOn8443 = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      seen.push({ path: `8443${req.url ?? ''}`, authorized: req.headers.authorization === `Bearer ${TOKEN}` });
      res.end('ok 8443');
    });
    upstreamOn8443.listen(8443, API_ADDRESS);
    await once(upstreamOn8443, 'listening');
    goClient = join(workDir, 'go-client');
    const source = fileURLToPath(new URL('../fixtures/go-client/main.go', import.meta.url));
    execFileSync('go', ['build', '-o', goClient, source], {
      env: { ...process.env, CGO_ENABLED: '0', GOCACHE: join(tmpdir(), 'keyway-test-go-cache'), GOPATH: join(workDir, 'gopath') },
    });
    proxy = await startProxy({
      env: { API_TOKEN: TOKEN, BOT_KEY: 'bot-key-contained', LIMITED_KEY: 'limited-key-contained' },
      config: {
        proxy: {
          hosts: { 'api.example.test': API_ADDRESS },
          allow_networks: ['127.0.0.0/8'],
          unmatched: 'deny',
          timeouts: { first_byte: '2s' },
        },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
        agents: {
          bot: { key: 'env:BOT_KEY', grants: ['api'] },
          limited: { key: 'env:LIMITED_KEY', grants: ['api'], limits: { rate: '3/h', burst: 3 } },
        },
      },
    });
  }, 180_000);
  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    await proxy?.stop();
    upstream?.close();
    upstreamOn8443?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** keyway run --contain --agent bot -- CMD, with no proxy or CA variable in the caller's environment. */
  async function contained(command: string[], path = process.env['PATH'] ?? '', options: string[] = [], extraEnv: Record<string, string> = {}) {
    // Run from workDir: the command's working folder, the one host folder it sees under its private /tmp.
    const r = await runProcess(
      ...cliCommand(['run', '--contain', '--agent', 'bot', ...options, '--', ...command]),
      { PATH: path, HOME: '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env, ...extraEnv },
      undefined,
      30_000,
      workDir,
    );
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  it('curl, Python requests and Node fetch, with no proxy or CA setting, get the credential injected', async () => {
    const curl = await contained(['curl', '-sS', 'https://api.example.test/v1/curl']);
    expect(curl.stdout, curl.stderr).toBe('ok');
    expect(curl.code).toBe(0);
    const python = await contained(['python3', '-c', "import requests; print(requests.get('https://api.example.test/v1/python').text)"]);
    expect(python.stdout.trim(), python.stderr).toBe('ok');
    const node = await contained([process.execPath, '-e', "fetch('https://api.example.test/v1/node').then((r) => r.text()).then(console.log)"]);
    expect(node.stdout.trim(), node.stderr).toBe('ok');
    expect(seen).toEqual([
      { path: '/v1/curl', authorized: true },
      { path: '/v1/python', authorized: true },
      { path: '/v1/node', authorized: true },
    ]);
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => String(l['path']).startsWith('/v1/'));
      return found.length >= 3 ? found : undefined;
    }, 'the audit lines');
    for (const line of lines) expect(line).toMatchObject({ decision: 'inject', agent: 'bot', grant: 'api', via: 'contain' });
  });

  it("the command's environment is an allow-list: none of keyway's secrets, nothing of the shell's unless --env names it (issue 47)", async () => {
    // The caller's shell holds the grant's secret (API_TOKEN, env: in the config), the agent's key,
    // keyway's master key (proxy.env), an admin token, and a token of its own.
    const shell = { KEYWAY_ADMIN_TOKEN: `${CANARY}-admin`, GH_TOKEN: `${CANARY}-gh`, AGENT_SETTING: 'kept', LC_ALL: 'C.UTF-8' };
    const r = await contained(['env'], undefined, ['--env', 'AGENT_SETTING'], shell);
    expect(r.code, r.stderr).toBe(0);
    const names = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, l.indexOf('=')));
    expect(names).toEqual(expect.arrayContaining(['PATH', 'HOME', 'AGENT_SETTING', 'LC_ALL', 'SSL_CERT_FILE']));
    for (const gone of ['API_TOKEN', 'BOT_KEY', 'KEYWAY_MASTER_KEY', 'KEYWAY_HOME', 'KEYWAY_ADMIN_TOKEN', 'GH_TOKEN']) expect(names, gone).not.toContain(gone);
    for (const secret of [TOKEN, `${CANARY}-admin`, `${CANARY}-gh`, proxy.env['KEYWAY_MASTER_KEY']!]) expect(r.stdout).not.toContain(secret);
    // Asking for one of keyway's secrets by name is refused before anything runs.
    for (const name of ['API_TOKEN', 'KEYWAY_MASTER_KEY']) {
      const refused = await contained(['env'], undefined, ['--env', name], shell);
      expect(refused.code, name).not.toBe(0);
      expect(refused.stderr).toContain(`--env ${name}: a secret of keyway's`);
      expect(refused.stdout).toBe('');
    }
  });

  it('a Go binary (its own resolver and TLS, no proxy setting) gets the credential injected', async () => {
    const r = await contained([goClient, 'https://api.example.test/v1/go']);
    expect(r.stdout, r.stderr).toBe('ok');
    expect(seen.at(-1)).toEqual({ path: '/v1/go', authorized: true });
  });

  it('TLS to a port --port names reaches that port; TLS to another port is refused, its server name audited', async () => {
    const served = await contained(['curl', '-sS', 'https://api.example.test:8443/v1/port'], undefined, ['--port', '8443']);
    expect(served.stdout, served.stderr).toBe('ok 8443');
    expect(seen.at(-1)).toEqual({ path: '8443/v1/port', authorized: true });
    const before = seen.length;
    // Without --port 8443 the port has no listener: a server name says nothing of the port, so
    // keyway will not guess it (443 would be the wrong service).
    const refused = await contained(['curl', '-sS', '--max-time', '5', 'https://api.example.test:8443/v1/port']);
    expect(refused.code).not.toBe(0);
    expect(seen.length).toBe(before);
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['via'] === 'contain' && l['code'] === 'no_destination' && l['host'] === 'api.example.test'),
      'the refusal',
    );
    // The port dialled and the agent are recorded (issue 60: it was port 0), so the hint names the port to add.
    expect(line).toMatchObject({ decision: 'deny', agent: 'bot', port: 8443 });
    expect(JSON.stringify(line)).toMatch(/TLS to api\.example\.test:8443, a port keyway was not told to serve .*--port 8443 adds it/);
  });

  it('where no agents are configured, the refusal of an unserved TLS port names the local agent and the port too (issue 60)', async () => {
    const alone = await startProxy({
      env: { API_TOKEN: TOKEN },
      config: {
        proxy: { hosts: { 'api.example.test': API_ADDRESS }, allow_networks: ['127.0.0.0/8'], unmatched: 'deny' },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      },
    });
    try {
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--', 'curl', '-sS', '--max-time', '5', 'https://api.example.test:8443/v1/local']),
        { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: alone.home, ...alone.env },
        undefined,
        30_000,
        workDir,
      );
      outputs.push(r.stdout, r.stderr);
      expect(r.code).not.toBe(0);
      const line = await waitFor(() => alone.auditLines().find((l) => l['via'] === 'contain' && l['code'] === 'no_destination'), 'the refusal');
      expect(line).toMatchObject({ decision: 'deny', agent: 'local', host: 'api.example.test', port: 8443 });
    } finally {
      await alone.stop();
    }
  });

  it('a program that needs a socket family keyway refuses is told so at exit, the family named (issue 60)', async () => {
    const unix = await contained(['python3', '-c', 'import socket; socket.socket(socket.AF_UNIX)']);
    expect(unix.code).toBe(1);
    // Python's own words, then keyway's: the family and the error, and the way to allow one.
    expect(unix.stderr).toContain('Operation not permitted');
    expect(unix.stderr).toMatch(/keyway: CMD exited with status 1; inside, keyway refuses Unix sockets \(AF_UNIX: .*EPERM; --allow-socket PATH/);
    const netlink = await contained(['python3', '-c', 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)']);
    expect(netlink.code).toBe(1);
    expect(netlink.stderr).toMatch(/keyway: CMD exited with status 1; .*AF_NETLINK's other protocols.*EAFNOSUPPORT/);
    // A run that went well says nothing of it.
    const fine = await contained(['python3', '-c', 'import socket; socket.socket(socket.AF_INET)']);
    expect(fine.code, fine.stderr).toBe(0);
    expect(fine.stderr).not.toContain('keyway refuses');
  });

  it('started from / as root: contain_refused naming the working folder, before any namespace is tried, even where unshare is refused (issue 60)', async () => {
    // A machine where user namespaces are refused (AppArmor's restriction, a sysctl): unshare says EPERM.
    const fake = mkdtempSync(join(tmpdir(), 'keyway-contain-no-userns-'));
    chmodSync(fake, 0o755);
    writeFileSync(join(fake, 'unshare'), '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    try {
      const env = { PATH: `${fake}:${process.env['PATH'] ?? ''}`, HOME: '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env };
      const args = [CLI, 'run', '--contain', '--agent', 'bot', '--', 'true'];
      const fromRoot = await runProcess(process.execPath, args, env, undefined, 30_000, '/');
      outputs.push(fromRoot.stdout, fromRoot.stderr);
      expect(fromRoot.code).toBe(2);
      expect(fromRoot.stderr.trim()).toBe(
        "keyway: contain_refused: the working folder is /: the whole host would be the command's to write; run from your project's folder; CMD was not run",
      );
      // From a project's folder on that machine: the refusal says what the kernel lacks, not a bare EPERM.
      const fromProject = await runProcess(process.execPath, args, env, undefined, 30_000, workDir);
      outputs.push(fromProject.stdout, fromProject.stderr);
      expect(fromProject.code).toBe(2);
      expect(fromProject.stderr).toMatch(/contain_unavailable: uid \d+ may not create a user and network namespace .*: allow unprivileged user namespaces/);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it("--allow-write ~/.claude and ~/.claude.json on a first run (the docs' recipe): made, the user's, and written through; elsewhere refused, nothing made (issue 60)", async () => {
    // The laptop case: keyway as root behind sudo, the user (uid 1000) owns the home and the project.
    const base = mkdtempSync('/var/lib/keyway-contain-write-');
    const home = join(base, 'home');
    // A project in the home: a working folder outside a home folder and /tmp is refused without --outside-home.
    const project = join(home, 'project');
    for (const dir of [home, project]) {
      mkdirSync(dir);
      chownSync(dir, 1000, 1000);
    }
    chmodSync(base, 0o755);
    const run = async (options: string[], command: string[]) => {
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--agent', 'bot', ...options, '--', ...command]),
        { PATH: process.env['PATH'] ?? '', HOME: home, SUDO_UID: '1000', SUDO_GID: '1000', KEYWAY_HOME: proxy.home, ...proxy.env },
        undefined,
        30_000,
        project,
      );
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    try {
      const script = 'cat "$HOME/.claude.json" && echo \'{"theme":"dark"}\' > "$HOME/.claude/settings.json" && echo \'{"first":true}\' > "$HOME/.claude.json"';
      const first = await run(['--allow-write', '~/.claude'.replace('~', home), '--allow-write', `${home}/.claude.json`], ['sh', '-c', script]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toBe('{}\n');
      expect(first.stderr).toContain(`keyway: made ${home}/.claude (an empty folder) for --allow-write: it did not exist yet`);
      expect(first.stderr).toContain(`keyway: made ${home}/.claude.json (a file holding {}) for --allow-write: it did not exist yet`);
      expect(readFileSync(join(home, '.claude', 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n');
      expect(readFileSync(join(home, '.claude.json'), 'utf8')).toBe('{"first":true}\n');
      for (const [path, mode] of [
        [join(home, '.claude'), 0o700],
        [join(home, '.claude.json'), 0o600],
      ] as const) {
        expect(statSync(path)).toMatchObject({ uid: 1000, gid: 1000 });
        expect(statSync(path).mode & 0o777, path).toBe(mode);
      }
      // The second run finds them: nothing made, nothing said.
      const second = await run(['--allow-write', join(home, '.claude')], ['true']);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).not.toContain('keyway: made');
      // Outside the home, or more than one level missing: refused, saying to make it; a refused run makes nothing.
      const outside = `/var/lib/keyway-contain-missing-${process.pid}`;
      const refused = await run(['--allow-write', join(home, '.later'), '--allow-write', outside], ['true']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(
        `--allow-write ${outside}: no such file or folder (keyway makes a missing one only inside your home folder): make it first`,
      );
      const deeper = await run(['--allow-write', join(home, 'a', 'b')], ['true']);
      expect(deeper.code).not.toBe(0);
      expect(deeper.stderr).toContain(`nor its folder ${join(home, 'a')}: make it first`);
      for (const path of [outside, join(home, '.later'), join(home, 'a')]) expect(existsSync(path), path).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('the command holds no capability inside: it cannot remove the rules or unmount the CA bundle', async () => {
    const caps = await contained(['sh', '-c', 'grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status']);
    expect(caps.stdout).toMatch(/CapEff:\s+0+\n/);
    expect(caps.stdout).toMatch(/CapBnd:\s+0+\n/);
    const flush = await contained(['nft', 'flush', 'ruleset'], `/usr/sbin:/sbin:${process.env['PATH'] ?? ''}`);
    expect(flush.code).not.toBe(0);
    const unmount = await contained(['umount', '/etc/ssl/certs/ca-certificates.crt']);
    expect(unmount.code).not.toBe(0);
    // The CA bundle inside is a read-only private copy: the command cannot add a CA of its own, there
    // or in keyway's bundle.pem behind it (issue 47).
    const bundle = join(proxy.home, 'certs', 'bundle.pem');
    const before = readFileSync(bundle, 'utf8');
    const write = await contained(['sh', '-c', 'echo "-----BEGIN CERTIFICATE-----" >> /etc/ssl/certs/ca-certificates.crt']);
    expect(write.code).not.toBe(0);
    // Read-only, and not the command's: it is no longer root, as root runs it (issue 47).
    expect(write.stderr).toMatch(/Read-only file system|Permission denied/);
    expect(readFileSync(bundle, 'utf8')).toBe(before);
    // The rules still hold afterwards: the credential still goes in.
    expect((await contained(['curl', '-sS', 'https://api.example.test/v1/after'])).stdout).toBe('ok');
  });

  it('DNS over TCP is answered inside too, never by a resolver outside', async () => {
    // A query for api.example.test, type A, framed by its length, to a public resolver's address.
    const script = `
const net = require('node:net');
const name = Buffer.concat([...'api.example.test'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
const query = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 1, 0, 1])]);
const s = net.connect({ host: '9.9.9.9', port: 53 }, () => s.write(Buffer.concat([Buffer.from([0, query.length]), query])));
s.on('data', (d) => { console.log(Array.from(d.subarray(d.length - 4)).join('.')); s.end(); });
s.on('error', (e) => console.log(e.code));`;
    const r = await contained([process.execPath, '-e', script]);
    expect(r.stdout.trim(), r.stderr).toBe('198.18.0.1');
  });

  it("joined to the keyway running for the home through its contain door: the agent's shell needs no secret, and two runs share one rate bucket (issue 47)", async () => {
    const totals = async () =>
      (await adminClient(proxy).call('GET', '/api/overview')).body as { totals: Record<string, number>; codes: Array<{ code: string; count: number }> };
    const before = await totals();
    // No API_TOKEN or BOT_KEY in this shell: the running keyway holds them (its contain door hands them on).
    const shell = Object.fromEntries(Object.entries(proxy.env).filter(([name]) => name !== 'API_TOKEN' && name !== 'BOT_KEY'));
    const served = await runProcess(
      ...cliCommand(['run', '--contain', '--agent', 'bot', '--', 'curl', '-sS', 'https://api.example.test/v1/door']),
      { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: proxy.home, ...shell },
      undefined,
      30_000,
      workDir,
    );
    outputs.push(served.stdout, served.stderr);
    expect(served.stdout, served.stderr).toBe('ok');
    expect(seen.at(-1)).toEqual({ path: '/v1/door', authorized: true });
    // In the home's one audit log, with the agent and via: contain.
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v1/door'), 'the audit line');
    expect(line).toMatchObject({ decision: 'inject', agent: 'bot', via: 'contain' });
    // limited: 3 requests an hour (a minute refilled one between two slow runs on a busy machine).
    // Two runs of two requests each: the fourth is refused, as it would be through keyway start
    // (each run used to start a keyway of its own, a fresh bucket).
    const statuses: string[] = [];
    for (let run = 0; run < 2; run++) {
      const r = await contained(['sh', '-c', 'for i in 1 2; do curl -s -o /dev/null -w "%{http_code} " https://api.example.test/v1/limited; done'], undefined, [
        '--agent',
        'limited',
      ]);
      statuses.push(...r.stdout.trim().split(' '));
    }
    expect(statuses).toEqual(['200', '200', '200', '429']);
    // The running keyway's overview counts the contained runs' requests (issue 86: it showed none of
    // them), handed over by the runs' keyways through the door: four injected and one refused.
    const after = await totals();
    expect(after.totals['inject']! - before.totals['inject']!).toBe(4);
    expect(after.totals['deny']! - before.totals['deny']!).toBe(1);
    const limited = (o: typeof before) => o.codes.find((c) => c.code === 'rate_limited')?.count ?? 0;
    expect(limited(after) - limited(before)).toBe(1);
  });

  it('with no keyway running for the home, runs one of its own (listed by keyway status while it runs)', async () => {
    // The same home's config and CA, with nothing running for it.
    const alone = mkdtempSync(join(tmpdir(), 'keyway-contain-alone-'));
    cpSync(proxy.home, alone, { recursive: true, filter: (src) => !/\/data\/(running|proxy\.json)|\/logs/.test(src.slice(proxy.home.length)) });
    try {
      const running = runProcess(
        ...cliCommand(['run', '--contain', '--agent', 'bot', '--', 'sh', '-c', 'curl -sS https://api.example.test/v1/alone; sleep 6']),
        { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: alone, ...proxy.env },
        undefined,
        30_000,
        workDir,
      );
      // Polled: the command starts once its keyway has recorded itself; `sleep 6` leaves room to look.
      let listed: { role: string; pid: number; grants: number | null } | undefined;
      for (let tries = 0; listed === undefined && tries < 20; tries++) {
        const r = await runProcess(...cliCommand(['status', '--json']), {
          PATH: process.env['PATH'] ?? '',
          HOME: '/tmp',
          KEYWAY_HOME: alone,
          ...proxy.env,
        });
        const keyways = r.code === 0 ? (JSON.parse(r.stdout) as { keyways: Array<{ role: string; pid: number; grants: number | null }> }).keyways : [];
        listed = keyways.find((k) => k.role === 'contain');
        if (listed === undefined) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(listed).toMatchObject({ role: 'contain', grants: 1 });
      const done = await running;
      outputs.push(done.stdout, done.stderr);
      expect(done.stdout, done.stderr).toBe('ok');
      expect(done.code).toBe(0);
      expect(seen.at(-1)).toEqual({ path: '/v1/alone', authorized: true });
      if (listed !== undefined) expect(existsSync(join(alone, 'data', 'running', `${listed.pid}.json`))).toBe(false);
      // Its own keyway wrote its own log, in that home.
      expect(readFileSync(join(alone, 'logs', 'audit.jsonl'), 'utf8')).toContain('/v1/alone');
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });

  it('without --agent where agents are configured: refused up front, naming the fix (issue 48), not a bare TLS error inside', async () => {
    const r = await runProcess(
      ...cliCommand(['run', '--contain', '--', 'curl', '-sS', 'https://api.example.test/v1/no-agent']),
      { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env },
      undefined,
      30_000,
      workDir,
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('agents are configured, so a contained command is one of them: name it with --agent ID');
    expect(seen.some((s) => s.path === '/v1/no-agent')).toBe(false);
  });

  it('passes the exit status through, and runs the command as one process tree in the namespaces', async () => {
    const r = await contained(['sh', '-c', 'ip -o link | grep -vc " lo:"; exit 7']);
    // No interface but loopback inside.
    expect(r.stdout.trim()).toBe('0');
    expect(r.code).toBe(7);
  });

  it('the ways around lead nowhere', { timeout: 60_000 }, async () => {
    const before = seen.length;
    const script = `
const net = require('node:net');
const tryTcp = (host, port, send) => new Promise((resolve) => {
  const s = net.connect({ host, port, timeout: 5000 });
  let got = '';
  s.on('connect', () => { if (send) s.write(send); });
  s.on('data', (c) => { got += c; });
  s.on('close', () => resolve(got ? 'answered: ' + got.slice(0, 40) : 'closed'));
  s.on('error', (e) => resolve(e.code));
  s.on('timeout', () => { s.destroy(); resolve('timeout'); });
});
(async () => {
  console.log(JSON.stringify({
    rawIp: await tryTcp('203.0.113.9', 443, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03])),
    ssh: await tryTcp('203.0.113.9', 22),
    ipv6: await tryTcp('2001:db8::1', 443),
    admin: await tryTcp("127.0.0.1", ${proxy.running.adminAddress?.port ?? proxy.port}),
    // Plain HTTP to some address, its Host naming the granted API: routed by the name, as plain
    // HTTP, which the grant does not allow (https only), so nothing is injected or sent.
    forgedHost: await tryTcp('203.0.113.9', 80, 'GET /v1/forged HTTP/1.1\\r\\nHost: api.example.test\\r\\nConnection: close\\r\\n\\r\\n'),
    quic: await new Promise((resolve) => {
      const u = require('node:dgram').createSocket('udp4');
      u.send('quic?', 443, '203.0.113.9', (err) => { u.close(); resolve(err ? err.code : 'sent'); });
    }),
  }));
})();`;
    const r = await contained([process.execPath, '-e', script]);
    const result = JSON.parse(r.stdout) as Record<string, string>;
    // A TLS hello with no server name, and a protocol that waits for the server: closed by keyway.
    expect(result['rawIp'], r.stderr).toBe('closed');
    expect(result['ssh']).toBe('closed');
    // No IPv6 route, and no keyway admin inside: nothing listens on the namespace's own loopback.
    expect(['ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED']).toContain(result['ipv6']);
    expect(result['admin']).toBe('ECONNREFUSED');
    expect(result['forgedHost']).toMatch(/^answered: HTTP\/1\.1 4\d\d /);
    // UDP other than DNS (QUIC) is dropped by the rules: the kernel says so to the sender.
    expect(result['quic']).toBe('EPERM');
    // A host no grant covers (a DNS-over-HTTPS resolver's, say), with unmatched: deny.
    expect((await contained(['curl', '-sS', '--max-time', '5', 'https://dns.example.test/dns-query'])).code).not.toBe(0);
    // No way back into the host's network namespace: no capability over it.
    const backOut = await contained(['nsenter', '--net=/proc/1/ns/net', 'true']);
    expect(backOut.code).not.toBe(0);
    expect(seen.length).toBe(before);
    const refusals = await waitFor(
      () => {
        const found = proxy.auditLines().filter((l) => l['via'] === 'contain' && l['decision'] === 'deny' && l['agent'] === 'bot');
        return found.length >= 3 ? found : undefined;
      },
      'the refusals',
      10_000,
    );
    expect(new Set(refusals.map((l) => l['code']))).toEqual(new Set(['no_destination', 'host_not_allowed', 'insecure_upstream']));
  });

  it('a keyway that cannot start (another master key, none running) runs nothing and leaves no run behind (issue 62: the namespaces are set up while it starts)', async () => {
    const alone = mkdtempSync(join(tmpdir(), 'keyway-contain-wrongkey-'));
    const dir = mkdtempSync(join(tmpdir(), 'keyway-contain-wrongkey-work-'));
    cpSync(proxy.home, alone, { recursive: true, filter: (src) => !/\/data\/(running|proxy\.json)|\/logs/.test(src.slice(proxy.home.length)) });
    try {
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--agent', 'bot', '--', 'touch', 'ran']),
        { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: alone, ...proxy.env, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') },
        undefined,
        30_000,
        dir,
      );
      outputs.push(r.stdout, r.stderr);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('keyway run: the master key does not open');
      expect(existsSync(join(dir, 'ran'))).toBe(false);
      // No record of a run in the home, no scratch folder of one on the host.
      expect(existsSync(join(alone, 'data', 'contain')) ? readdirSync(join(alone, 'data', 'contain')) : []).toEqual([]);
      const scratches = readdirSync('/var/tmp').filter((name) => name.startsWith('keyway-contain-'));
      const runOf = (name: string) => {
        try {
          return readFileSync(join('/var/tmp', name, 'run.json'), 'utf8');
        } catch {
          return ''; // another run's scratch, being made or removed
        }
      };
      for (const name of scratches) expect(runOf(name)).not.toContain(dir);
    } finally {
      rmSync(alone, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('where it cannot be set up, says what is missing and does not run the command (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-contain-'));
    const marker = join(dir, 'ran');
    try {
      // A PATH without /usr/sbin: no nft, no ip.
      const r = await contained(['touch', marker], '/usr/bin:/bin');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/contain_unavailable: .*(nft|ip) .*not installed; CMD was not run/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
