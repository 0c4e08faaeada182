// keyway service install (issue 47): keyway as a system user of its own. Two uids: the service user
// the install makes, and 1000, the person whose agent runs. The home is unreadable to the agent's
// uid, the agent gets the CA and the proxy URL and nothing else, and is served through the proxy
// the unit's own ExecStart runs (as the service user, with the unit's environment); the operators'
// CLI asks the service through its admin API. Needs root (CI is); systemd need not run: the unit is
// checked with systemd-analyze verify and its command run here. The root commands run a node in a
// folder only root may enter, as a clone in a 0700 folder has it (issue 60): the service must run
// (and the test's other uids reach) a copy, wherever the person cloned keyway. Uninstall --purge is
// all or nothing: refused, naming what runs, while anything of the service does (issue 60).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unitCommand } from '../../src/service/unit.ts';
import { freePort } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { CLI, runProcess } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const TOKEN = `${CANARY}-service`;
const AGENT_UID = 1000;
const USER = `kwsvc${process.pid % 10_000}`;
const API_ADDRESS = `127.${200 + (process.pid % 50)}.3.4`;
const COMMAND_LIMIT_MS = 120_000;
/** A second service's user, which must not take over the first one's share or home. */
const OTHER_USER = `kwsvd${process.pid % 10_000}`;

/** This node, copied into a folder only root may enter (mkdtemp makes it 0700): as a clone in /root/keyway has it. */
function nodeOutOfReach(): { node: string; folder: string } {
  const folder = mkdtempSync(join(tmpdir(), 'keyway-closed-'));
  const node = join(folder, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  return { node, folder };
}

describe('keyway service install', () => {
  const base = mkdtempSync('/var/lib/keyway-service-test-');
  const home = join(base, 'home');
  const share = join(base, 'share');
  const unitDir = join(base, 'units');
  const installDir = join(base, 'lib', 'keyway');
  const layoutArgs = ['--user', USER, '--home', home, '--share', share, '--unit-dir', unitDir, '--install-dir', installDir];
  let upstream: Server;
  let proxyPort: number;
  let service: ReturnType<typeof spawn> | undefined;
  const seen: boolean[] = [];
  const outputs: string[] = [];
  const closed = nodeOutOfReach();

  // An install copies node and keyway's dependencies (~200 MB): on this shared machine under load one
  // took 30 s. The limits are there to catch a hang, not to time anything.
  const asRoot = async (args: string[]) => {
    const r = await runProcess(closed.node, [CLI, ...args], { PATH: process.env['PATH'] ?? '', HOME: '/root' }, undefined, COMMAND_LIMIT_MS);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  /** A command as the agent's uid, with only what a login shell would have (not spawnSync: the upstream answers from this process). */
  const asAgent = async (command: string, args: string[]) => {
    const child = spawn(command, args, {
      uid: AGENT_UID,
      gid: AGENT_UID,
      env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [status] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    outputs.push(stdout, stderr);
    return { status, stdout, stderr };
  };

  beforeAll(async () => {
    // As /var/lib is: others may pass through, the home inside is what is closed.
    chmodSync(base, 0o755);
    upstream = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      seen.push(req.headers.authorization === `Bearer ${TOKEN}`);
      res.end(req.headers.authorization === `Bearer ${TOKEN}` ? 'ok' : 'no');
    });
    upstream.listen(443, API_ADDRESS);
    await once(upstream, 'listening');
    proxyPort = await freePort();
    const adminPort = await freePort();
    // The operator's config, written before install (init keeps a config that is there): a grant
    // whose secret is a file in the home, the test's CA for the upstream.
    mkdirSync(join(home, 'config'), { recursive: true });
    mkdirSync(join(home, 'data'), { recursive: true });
    writeFileSync(join(home, 'data', 'api-token'), `${TOKEN}\n`);
    writeFileSync(join(home, 'upstream-ca.pem'), readFileSync(TLS_FIXTURES.caPath));
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      [
        'proxy:',
        `  listen: 127.0.0.1:${proxyPort}`,
        '  upstream_ca: [upstream-ca.pem]',
        "  allow_networks: ['127.0.0.0/8']",
        `  hosts: {api.example.test: '${API_ADDRESS}'}`,
        'admin:',
        `  listen: 127.0.0.1:${adminPort}`,
        'grants:',
        '  api: {type: bearer, domains: [api.example.test], secret: file:data/api-token}',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    service?.kill('SIGTERM');
    if (service && service.exitCode === null) await once(service, 'exit');
    await asRoot(['service', 'uninstall', ...layoutArgs, '--purge']);
    // Only there if a second install took over (the fault this file guards against).
    spawnSync('userdel', [OTHER_USER]);
    spawnSync('groupdel', [`${OTHER_USER}-operators`]);
    upstream?.close();
    rmSync(base, { recursive: true, force: true });
    rmSync(closed.folder, { recursive: true, force: true });
    for (const text of outputs) expect(findLeak(text, TOKEN)).toBeUndefined();
  });

  it(
    'makes the user, a home only it can read, the share and a unit systemd accepts',
    async () => {
      const r = await asRoot(['service', 'install', ...layoutArgs, '--no-start']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`keyway runs as ${USER}`);
      const entry = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' }).stdout.trim().split(':');
      expect(entry[6]).toBe('/usr/sbin/nologin');
      const uid = Number(entry[2]);
      expect(statSync(home)).toMatchObject({ uid, mode: expect.any(Number) });
      expect(statSync(home).mode & 0o777).toBe(0o700);
      expect(statSync(join(home, 'data', 'api-token')).uid).toBe(uid);
      expect(statSync(join(share, 'admin.token')).mode & 0o777).toBe(0o640);
      const unit = readFileSync(join(unitDir, `${USER}.service`), 'utf8');
      expect(unit).toContain(`User=${USER}`);
      const verify = spawnSync('systemd-analyze', ['verify', join(unitDir, `${USER}.service`)], { encoding: 'utf8' });
      expect(verify.status, verify.stderr).toBe(0);
      for (const line of ['SystemCallFilter=@system-service', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK', 'ProtectProc=invisible'])
        expect(unit).toContain(line);
      // ExecStart names only files no user but root can change: the copy, not this checkout.
      const { command } = unitCommand(unit);
      expect(command[1]).toBe(join(installDir, 'dist', 'cli', 'main.js'));
      // The node install ran from is out of other users' reach: the service runs its own copy.
      expect(command[0]).toBe(join(installDir, 'bin', 'node'));
      for (const path of command.slice(0, 2)) {
        for (let at = path; ; at = dirname(at)) {
          const stat = statSync(at);
          expect(stat.uid, at).toBe(0);
          expect(stat.mode & 0o022, at).toBe(0);
          if (at === '/') break;
        }
      }
      const copied = spawnSync('find', [installDir, '(', '-not', '-user', 'root', '-o', '-perm', '/022', ')', '-not', '-type', 'l'], { encoding: 'utf8' });
      expect(copied.stdout).toBe('');
      expect(statSync(join(installDir, 'node_modules', 'undici', 'package.json')).isFile()).toBe(true);
      // Dev dependencies are not part of what the service runs.
      expect(() => statSync(join(installDir, 'node_modules', 'vitest'))).toThrow();
      // Run again: nothing breaks, nothing is lost (the grant's secret is still there).
      const again = await asRoot(['service', 'install', ...layoutArgs, '--no-start']);
      expect(again.code, again.stderr).toBe(0);
      expect(readFileSync(join(home, 'data', 'api-token'), 'utf8')).toBe(`${TOKEN}\n`);
    },
    2 * COMMAND_LIMIT_MS + 10_000,
  );

  it("runs the unit's command as the service user; an agent as uid 1000 gets the credential injected and nothing of keyway's", async () => {
    const { command, env, user } = unitCommand(readFileSync(join(unitDir, `${USER}.service`), 'utf8'));
    expect(user).toBe(USER);
    const [uid, gid] = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' }).stdout.trim().split(':').slice(2, 4).map(Number);
    service = spawn(command[0]!, command.slice(1), { uid, gid, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    service.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    service.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    for (let tries = 0; tries < 100 && !log.includes(String(proxyPort)); tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    outputs.push(log);
    expect(service.exitCode, log).toBeNull();

    const agent = await asAgent('sh', [
      '-c',
      [
        `. ${share}/proxy.env`,
        'echo granted=$(curl -sS https://api.example.test/v1/service)',
        `if cat ${home}/data/master.key >/dev/null 2>&1; then echo master=yes; else echo master=no; fi`,
        `if ls ${home} >/dev/null 2>&1; then echo home=yes; else echo home=no; fi`,
        `if cat ${share}/admin.token >/dev/null 2>&1; then echo admin=yes; else echo admin=no; fi`,
        `if cat ${share}/ca.pem >/dev/null 2>&1; then echo ca=yes; else echo ca=no; fi`,
      ].join('; '),
    ]);
    expect(agent.stdout.trim().split('\n')).toEqual(['granted=ok', 'master=no', 'home=no', 'admin=no', 'ca=yes']);
    expect(seen.at(-1)).toBe(true);
  });

  it('service status: the operator reads the admin token and asks the admin API; the agent cannot', async () => {
    const r = await asRoot(['service', 'status', '--share', share, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { running: boolean; pid: number; grants: number; user: string };
    expect(status).toMatchObject({ running: true, pid: service?.pid, grants: 1, user: USER });
    // The agent runs the keyway the service installed (readable by every user, wherever this checkout is).
    const [node, main] = unitCommand(readFileSync(join(unitDir, `${USER}.service`), 'utf8')).command;
    const agent = await asAgent(node!, [main!, 'service', 'status', '--share', share]);
    expect(agent.status).not.toBe(0);
    expect(agent.stderr).toContain(`is for the ${USER}-operators group`);
  });

  it('refuses to install where another user could change the code the service runs, naming the folder', async () => {
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r = await asRoot(['service', 'install', ...layoutArgs.slice(0, -1), join(open, 'keyway'), '--no-start']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${open}: ${open} is writable by every user`);
    expect(() => statSync(join(open, 'keyway'))).toThrow();
  });

  it('a second install with another user on the same share or home is refused, and nothing of the first changes', async () => {
    const shared = ['ca.pem', 'bundle.pem', 'admin.token', 'proxy.env', 'service.json'].map((name) => [name, readFileSync(join(share, name))] as const);
    const otherHome = join(base, 'other-home');
    const otherUnits = join(base, 'other-units');
    const otherLib = join(base, 'other-lib', 'keyway');
    const sameShare = await asRoot([
      'service',
      'install',
      '--user',
      OTHER_USER,
      '--home',
      otherHome,
      '--share',
      share,
      '--unit-dir',
      otherUnits,
      '--install-dir',
      otherLib,
      '--no-start',
    ]);
    expect(sameShare.code).not.toBe(0);
    expect(sameShare.stderr).toContain(`${share} holds the keyway service of ${USER} (home ${home})`);
    const sameHome = await asRoot([
      'service',
      'install',
      '--user',
      OTHER_USER,
      '--home',
      home,
      '--share',
      join(base, 'other-share'),
      '--unit-dir',
      otherUnits,
      '--install-dir',
      otherLib,
      '--no-start',
    ]);
    expect(sameHome.code).not.toBe(0);
    expect(sameHome.stderr).toContain(`${home} belongs to ${USER}, not ${OTHER_USER}`);
    // Nor may the other user's uninstall remove this service's share.
    const otherUninstall = await asRoot(['service', 'uninstall', '--user', OTHER_USER, '--home', otherHome, '--share', share, '--unit-dir', otherUnits]);
    expect(otherUninstall.code).not.toBe(0);
    expect(otherUninstall.stderr).toContain(`to remove that one, pass --user ${USER} --home ${home}`);
    for (const [name, bytes] of shared) expect(readFileSync(join(share, name)).equals(bytes), name).toBe(true);
    expect(spawnSync('getent', ['passwd', OTHER_USER]).status).not.toBe(0);
    expect(statSync(home).uid).toBe(Number(spawnSync('getent', ['passwd', USER], { encoding: 'utf8' }).stdout.split(':')[2]));
    for (const path of [otherHome, otherUnits, otherLib, join(base, 'other-share')]) expect(existsSync(path), path).toBe(false);
  });

  it("uninstall --purge never removes a home that is another user's, even with no service user left", async () => {
    const someonesHome = join(base, 'someones-home');
    mkdirSync(join(someonesHome, 'config'), { recursive: true });
    writeFileSync(join(someonesHome, 'config', 'keyway.yaml'), 'proxy: {}\n');
    spawnSync('chown', ['-R', `${AGENT_UID}:${AGENT_UID}`, someonesHome]);
    const owner = spawnSync('getent', ['passwd', String(AGENT_UID)], { encoding: 'utf8' }).stdout.split(':')[0] || `uid ${AGENT_UID}`;
    const r = await asRoot([
      'service',
      'uninstall',
      '--user',
      OTHER_USER,
      '--home',
      someonesHome,
      '--share',
      join(base, 'no-share'),
      '--unit-dir',
      join(base, 'no-units'),
      '--install-dir',
      join(base, 'no-lib'),
      '--purge',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${someonesHome} belongs to ${owner}, not ${OTHER_USER}`);
    expect(readFileSync(join(someonesHome, 'config', 'keyway.yaml'), 'utf8')).toBe('proxy: {}\n');
  });

  it('uninstall --purge while the service or any process of its user runs is refused, naming it, and removes nothing', async () => {
    const key = readFileSync(join(home, 'data', 'master.key'));
    const audit = readFileSync(join(home, 'logs', 'audit.jsonl'));
    const intact = () => {
      expect(readFileSync(join(home, 'data', 'master.key')).equals(key)).toBe(true);
      expect(existsSync(join(home, 'data', 'store.json'))).toBe(true);
      // The audit log only grows (the service may append to it meanwhile).
      expect(
        readFileSync(join(home, 'logs', 'audit.jsonl'))
          .subarray(0, audit.length)
          .equals(audit),
      ).toBe(true);
      for (const path of [share, join(unitDir, `${USER}.service`), installDir]) expect(existsSync(path), path).toBe(true);
      expect(spawnSync('getent', ['passwd', USER]).status).toBe(0);
      expect(spawnSync('getent', ['group', `${USER}-operators`]).status).toBe(0);
    };
    expect(service?.exitCode).toBeNull();
    const whileServing = await asRoot(['service', 'uninstall', ...layoutArgs, '--purge']);
    expect(whileServing.code).not.toBe(0);
    expect(whileServing.stderr).toContain('nothing removed');
    expect(whileServing.stderr).toContain(`pid ${service!.pid} (keyway start on this home`);
    intact();
    expect(service?.exitCode).toBeNull();

    // The keyway stopped, any other process of the service user still makes userdel refuse.
    service?.kill('SIGTERM');
    if (service && service.exitCode === null) await once(service, 'exit');
    const [uid, gid] = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' }).stdout.trim().split(':').slice(2, 4).map(Number);
    const straggler = spawn('sleep', ['60'], { uid, gid, stdio: 'ignore' });
    try {
      const whileOther = await asRoot(['service', 'uninstall', ...layoutArgs, '--purge']);
      expect(whileOther.code).not.toBe(0);
      expect(whileOther.stderr).toContain(`pid ${straggler.pid} (sleep, as the service user)`);
      intact();
    } finally {
      straggler.kill('SIGKILL');
      if (straggler.exitCode === null && straggler.signalCode === null) await once(straggler, 'exit');
    }
  });

  it(
    'uninstall --purge removes the unit, the share, the home, the user, the group, and the copy once no other unit runs it',
    async () => {
      service?.kill('SIGTERM');
      if (service && service.exitCode === null) await once(service, 'exit');
      // Another service's unit beside this one runs the same copy: the purge keeps it, and says so.
      const sharing = join(unitDir, `${OTHER_USER}.service`);
      writeFileSync(sharing, `[Service]\nExecStart=${join(installDir, 'bin', 'node')} ${join(installDir, 'dist', 'cli', 'main.js')} start\n`);
      const r = await asRoot(['service', 'uninstall', ...layoutArgs, '--purge']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`kept ${installDir}: ${OTHER_USER}.service runs it too`);
      expect(existsSync(join(installDir, 'dist', 'cli', 'main.js'))).toBe(true);
      expect(spawnSync('getent', ['passwd', USER]).status).not.toBe(0);
      expect(spawnSync('getent', ['group', `${USER}-operators`]).status).not.toBe(0);
      for (const path of [home, share, join(unitDir, `${USER}.service`)]) expect(() => statSync(path)).toThrow();
      rmSync(sharing);
      const rest = await asRoot(['service', 'uninstall', ...layoutArgs, '--purge']);
      expect(rest.code, rest.stderr).toBe(0);
      expect(rest.stdout).toContain(`removed ${installDir}`);
      expect(() => statSync(installDir)).toThrow();
    },
    2 * COMMAND_LIMIT_MS + 10_000,
  );
});
