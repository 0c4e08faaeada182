import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, runProcess } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// `keyway status` and `keyway stop` find the proxy of a home through data/proxy.json and its admin
// API, from any folder; a second start on a busy port names the keyway already there.
describe('keyway status and stop', () => {
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await startUpstream();
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { 'api.example.test': '127.0.0.1' }, drain_timeout: '2s' },
        grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } },
      }),
    );
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY });
    proxy = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const status = async () => {
    const result = await runCli(['status', '--json', '--home', home], env);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  };

  it('shows pid, addresses, uptime, counts, requests served and the audit state', async () => {
    const before = await status();
    expect(before).toMatchObject({
      running: true,
      home,
      pid: proxy.child.pid,
      proxy: `127.0.0.1:${proxy.port}`,
      grants: 1,
      agents: 0,
      requests: 0,
      refused: 0,
      audit: 'ok',
    });
    expect(before['admin']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(before['uptime_s']).toBeGreaterThanOrEqual(0);

    const curl = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
    );
    expect(curl.stdout).toBe('200');
    const refused = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${proxy.port}/not-a-proxy-request`],
      cleanEnv(),
    );
    expect(refused.stdout).not.toBe('200');
    const after = await status();
    expect(after).toMatchObject({ requests: 2, refused: 1 });

    const human = await runCli(['status', '--home', home], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`keyway is running (pid ${proxy.child.pid}`);
    expect(human.stdout).toContain(`http://127.0.0.1:${proxy.port}`);
    expect(human.stdout).toContain('served    2 requests, 1 of them refused'); // not '2 served, 1 refused', read as 3 (issue 48)
    for (const out of [JSON.stringify(after), human.stdout, human.stderr]) {
      expect(out).not.toContain(CANARY);
      expect(out).not.toContain(readFileSync(join(home, 'data', 'admin.token'), 'utf8').trim());
    }
  });

  it('/api/status needs the admin token', async () => {
    const { admin } = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const anonymous = await fetch(`http://127.0.0.1:${admin.port}/api/status`);
    expect(anonymous.status).toBe(401);
    const wrong = await fetch(`http://127.0.0.1:${admin.port}/api/status`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('a second start on the busy port fails with one line naming the keyway there', async () => {
    const second = await runCli(['start', '--home', home, '--listen', `127.0.0.1:${proxy.port}`, '--admin-listen', '127.0.0.1:0'], {
      ...env,
      KEYWAY_RUNTIME: 'as-is',
    });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${proxy.port} (proxy.listen): the port is in use by keyway pid ${proxy.child.pid}`);
    // The first keeps running and keeps its announcement.
    expect((await status())['pid']).toBe(proxy.child.pid);
  });

  it('a start with another home on that port says another keyway holds it; a port held by something else says only that it is in use', async () => {
    const elsewhere = await runCli(['start', '--home', makeHome(), '--listen', `127.0.0.1:${proxy.port}`, '--admin-listen', '127.0.0.1:0'], {
      ...env,
      KEYWAY_RUNTIME: 'as-is',
    });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr.trim().split('\n')).toHaveLength(1);
    expect(elsewhere.stderr).toContain(
      `cannot listen on 127.0.0.1:${proxy.port} (proxy.listen): the port is in use by another keyway, started with another home`,
    );

    const { admin } = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const onAdmin = await runCli(['start', '--home', makeHome(), '--listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${admin.port}`], {
      ...env,
      KEYWAY_RUNTIME: 'as-is',
    });
    expect(onAdmin.code).toBe(1);
    expect(onAdmin.stderr).toContain(`cannot listen on 127.0.0.1:${admin.port} (admin.listen): the port is in use by another keyway`);
    expect(onAdmin.stderr).toContain('; start with --admin-listen HOST:PORT to use another port');

    const plain = createServer((_req, res) => res.end('not keyway'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const port = (plain.address() as AddressInfo).port;
      const taken = await runCli(['start', '--home', makeHome(), '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0'], {
        ...env,
        KEYWAY_RUNTIME: 'as-is',
      });
      expect(taken.code).toBe(1);
      expect(taken.stderr.trim()).toBe(
        `keyway start: cannot listen on 127.0.0.1:${port} (proxy.listen): the port is in use; ` +
          'start with --listen HOST:PORT to use another port (127.0.0.1:0 takes a free one), or set proxy.listen in the config',
      );
    } finally {
      plain.close();
    }
  });

  it('stop ends it gracefully, removes proxy.json, and status then says none runs', async () => {
    const exited = once(proxy.child, 'exit');
    const stop = await runCli(['stop', '--home', home], env);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout.trim()).toBe(`keyway stopped (pid ${proxy.child.pid})`);
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(proxy.stderr()).toContain('SIGTERM: stopping');
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);

    const none = await runCli(['status', '--home', home], env);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr.trim()).toBe(`keyway status: no proxy is running for home ${home}; start one with \`keyway start\``);
    const noneJson = await runCli(['status', '--json', '--home', home], env);
    expect(noneJson.code).toBe(1);
    expect(JSON.parse(noneJson.stdout)).toEqual({ running: false, home });
    const stopAgain = await runCli(['stop', '--home', home], env);
    expect(stopAgain.code).toBe(1);
    expect(stopAgain.stderr).toContain('no proxy is running');
  });
});

describe('a data/proxy.json that does not describe a running keyway', () => {
  it('left by a process that is gone: status and stop ignore it and remove it', async () => {
    const home = makeHome();
    const env = cleanEnv();
    const gone = await runProcess(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], env);
    const file = join(home, 'data', 'proxy.json');
    for (const command of ['status', 'stop']) {
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(
        file,
        JSON.stringify({ pid: Number(gone.stdout), proxy: { host: '127.0.0.1', port: 1 }, admin: null, started_at: new Date().toISOString() }),
      );
      const result = await runCli([command, '--home', home], env);
      expect(result.code, command).toBe(1);
      expect(result.stderr, command).toContain(`removed data/proxy.json left by pid ${gone.stdout}, which is gone`);
      expect(existsSync(file), command).toBe(false);
    }
  });

  it('naming a live process that is not keyway: stop does not signal it', async () => {
    const home = makeHome();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(
        join(home, 'data', 'proxy.json'),
        JSON.stringify({ pid: other.pid, proxy: { host: '127.0.0.1', port: 1 }, admin: null, started_at: new Date().toISOString() }),
      );
      const result = await runCli(['stop', '--home', home], cleanEnv());
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`cannot confirm that pid ${other.pid} is keyway`);
      expect(other.exitCode).toBeNull();
      expect(other.signalCode).toBeNull();
      // status still reports what the file says, without live counts.
      const status = await runCli(['status', '--json', '--home', home], cleanEnv());
      expect(JSON.parse(status.stdout)).toMatchObject({
        running: true,
        pid: other.pid,
        grants: null,
        live_counts_unavailable: expect.stringContaining('admin API is disabled'),
      });
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('naming the admin API by a host name: the admin token is not sent there', async () => {
    const home = makeHome();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const heard: string[] = [];
    const listener = createServer((req, res) => {
      heard.push(req.headers.authorization ?? '');
      res.end('{}');
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    try {
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(join(home, 'data', 'admin.token'), 'planted-admin-token\n');
      const port = (listener.address() as AddressInfo).port;
      writeFileSync(
        join(home, 'data', 'proxy.json'),
        JSON.stringify({ pid: other.pid, proxy: { host: '127.0.0.1', port: 1 }, admin: { host: 'localhost', port }, started_at: new Date().toISOString() }),
      );
      const status = await runCli(['status', '--json', '--home', home], cleanEnv());
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, live_counts_unavailable: expect.stringContaining('host name (localhost)') });
      expect(heard).toEqual([]);
    } finally {
      other.kill('SIGKILL');
      listener.close();
    }
  });
});
