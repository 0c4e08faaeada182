// keyway run --contain, attacked from inside as the red team did (issue 47): the contained command
// is the agent, prompt-injected, the same user as keyway on the host. Every escape they found is a
// check here: reading keyway's home (the master key, the store), rewriting the config or the audit
// log, the user's credential files, signalling keyway or another process of the same uid, a host
// Unix socket (in /tmp, /run or elsewhere), pushing keystrokes into the terminal, writing /etc or
// ~/.bashrc, reading /etc/shadow. Beside them a granted request still gets its credential, the
// working folder is writable, and `keyway audit verify` passes afterwards.
//
// Run as root (CI is). The laptop case is simulated with SUDO_UID: the command runs as uid 1000,
// which owns keyway's home, the user's home and the working folder, so only the containment (not
// file permissions) keeps them out. Everything lives under /var/lib, outside the private /tmp, so
// a check cannot pass just because /tmp is private. The master key is the test home's
// .test-master-key (given to keyway as KEYWAY_MASTER_KEY), read as data/master.key would be.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cliCommand, cliShellLine, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-reach`;
const API_ADDRESS = `127.${150 + (process.pid % 100)}.1.3`;
const USER = 1000;

describe("keyway run --contain: nothing of keyway's within the agent's reach (issue 47)", () => {
  const base = mkdtempSync('/var/lib/keyway-reach-');
  const home = join(base, 'keyway-home');
  const userHome = join(base, 'user');
  const workdir = join(base, 'project');
  const elsewhere = join(base, 'sockets');
  const socketPaths = [`/tmp/keyway-reach-${process.pid}.sock`, `/run/keyway-reach-${process.pid}.sock`, join(elsewhere, 'service.sock')];
  const socketServers: NetServer[] = [];
  let socketConnections = 0;
  let upstream: HttpsServer;
  let proxy: TestProxy;
  const seen: boolean[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    for (const dir of [home, userHome, workdir, elsewhere]) mkdirSync(dir, { recursive: true });
    upstream = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      seen.push(req.headers.authorization === `Bearer ${TOKEN}`);
      res.end(req.headers.authorization === `Bearer ${TOKEN}` ? 'ok' : 'no');
    });
    upstream.listen(443, API_ADDRESS);
    await once(upstream, 'listening');
    proxy = await startProxy({
      home,
      env: { API_TOKEN: TOKEN, BOT_KEY: 'bot-key-reach' },
      config: {
        proxy: { hosts: { 'api.example.test': API_ADDRESS }, allow_networks: ['127.0.0.0/8'], unmatched: 'deny' },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['api'] } },
        contain: { hide: ['~/notes/private.txt'] },
        // Two identical refusals in full per interval, the rest counted: one budget for the agent.
        audit: { refusal_budget: 2, refusal_interval: '60s' },
      },
    });
    // The user's credential files and shell start-up file, as on a laptop.
    mkdirSync(join(userHome, '.ssh'));
    writeFileSync(join(userHome, '.ssh', 'id_ed25519'), `${CANARY}-ssh-key\n`);
    mkdirSync(join(userHome, '.aws'));
    writeFileSync(join(userHome, '.aws', 'credentials'), `[default]\naws_secret_access_key = ${CANARY}-aws\n`);
    mkdirSync(join(userHome, 'notes'));
    writeFileSync(join(userHome, 'notes', 'private.txt'), `${CANARY}-notes\n`);
    writeFileSync(join(userHome, '.bashrc'), "# the user's\n");
    // Host services on Unix sockets, anyone may connect (0777): a forwarder to a host TCP service, tmux, docker.sock.
    for (const path of socketPaths) {
      rmSync(path, { force: true });
      const server = createNetServer((socket) => {
        socketConnections++;
        socket.end('host service\n');
      });
      server.listen(path);
      await once(server, 'listening');
      execFileSync('chmod', ['0777', path]);
      socketServers.push(server);
    }
    // The laptop: keyway's home, the user's home and the project are all the agent's own uid's.
    execFileSync('chown', ['-R', `${USER}:${USER}`, base]);
    execFileSync('chmod', ['0755', base]);
  });

  afterAll(async () => {
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    await proxy?.stop();
    upstream?.close();
    for (const server of socketServers) server.close();
    for (const path of socketPaths) rmSync(path, { force: true });
    rmSync(base, { recursive: true, force: true });
  });

  /** keyway run --contain --agent bot, as uid 1000 behind sudo, from the project folder. */
  async function contained(command: string[], options: string[] = [], extraEnv: Record<string, string> = {}) {
    const r = await runProcess(
      ...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', ...options, '--', ...command]),
      { PATH: process.env['PATH'] ?? '', HOME: userHome, SUDO_UID: String(USER), SUDO_GID: String(USER), KEYWAY_HOME: home, ...proxy.env, ...extraEnv },
      undefined,
      30_000,
      workdir,
    );
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  /** Runs a shell script inside; each check prints `name=verdict`. */
  async function checks(script: string, options: string[] = []): Promise<Record<string, string>> {
    const r = await contained(['sh', '-c', script], options);
    expect(r.code, r.stderr).toBe(0);
    return Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  const verdict = (name: string, command: string) => `if ${command} >/dev/null 2>&1; then echo ${name}=yes; else echo ${name}=no; fi;`;

  it("keyway's home, config and audit log: not readable, not writable; the user's credential files hidden; a granted request still works", async () => {
    const configBefore = readFileSync(join(home, 'config', 'keyway.yaml'), 'utf8');
    const found = await checks(
      [
        `echo whoami=$(id -u);`,
        verdict('read_master_key', `grep -q . ${home}/.test-master-key`),
        verdict('list_home', `sh -c 'ls -A ${home} | grep -q .'`),
        verdict('read_admin_token', `grep -q . ${home}/data/admin.token`),
        verdict('read_ca_key', `grep -q . ${home}/certs/ca-key.pem`),
        verdict('write_config', `sh -c 'echo "grants: {}" >> ${home}/config/keyway.yaml'`),
        verdict('cut_audit', `sh -c ': > ${proxy.auditPath}'`),
        verdict('read_ssh_key', `grep -q . ${userHome}/.ssh/id_ed25519`),
        verdict('read_aws', `grep -q . ${userHome}/.aws/credentials`),
        verdict('read_hidden_by_config', `grep -q . ${userHome}/notes/private.txt`),
        verdict('write_bashrc', `sh -c 'echo evil >> ${userHome}/.bashrc'`),
        verdict('write_etc', 'touch /etc/keyway-reach'),
        verdict('read_shadow', 'grep -q . /etc/shadow'),
        `echo cwd=$(pwd);`,
        verdict('write_cwd', 'sh -c "echo made-inside > ./made-inside.txt"'),
        `echo granted=$(curl -sS https://api.example.test/v1/reach);`,
      ].join(' '),
    );
    expect(found).toMatchObject({
      whoami: String(USER),
      read_master_key: 'no',
      list_home: 'no',
      read_admin_token: 'no',
      read_ca_key: 'no',
      write_config: 'no',
      cut_audit: 'no',
      read_ssh_key: 'no',
      read_aws: 'no',
      read_hidden_by_config: 'no',
      // The command's HOME is a throwaway of its own (issue 84): the write succeeds there, and the host's stays as it was.
      write_bashrc: 'yes',
      write_etc: 'no',
      read_shadow: 'no',
      cwd: workdir,
      write_cwd: 'yes',
      granted: 'ok',
    });
    expect(seen.at(-1)).toBe(true);
    expect(readFileSync(join(home, 'config', 'keyway.yaml'), 'utf8')).toBe(configBefore);
    expect(readFileSync(join(userHome, '.bashrc'), 'utf8')).toBe("# the user's\n");
    expect(readFileSync(join(workdir, 'made-inside.txt'), 'utf8')).toBe('made-inside\n');
    // The audit log is whole: the contained request's lines are there and the chain verifies.
    await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v1/reach'), 'the audit line');
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('keyway and a host process of the same uid are not in /proc and survive a signal', async () => {
    const sleeper = spawn('sleep', ['60'], { uid: USER, gid: USER, stdio: 'ignore' });
    await once(sleeper, 'spawn');
    try {
      const found = await checks(
        [
          `echo pids=$(ls /proc | grep -c '^[0-9]');`,
          verdict('see_keyway', `test -e /proc/${process.pid}`),
          verdict('see_sleeper', `test -e /proc/${sleeper.pid}`),
          verdict('hup_keyway', `kill -HUP ${process.pid}`),
          verdict('kill_sleeper', `kill -KILL ${sleeper.pid}`),
          verdict('kill_pid_1', 'kill -KILL 1'),
        ].join(' '),
      );
      expect(found).toMatchObject({ see_keyway: 'no', see_sleeper: 'no', hup_keyway: 'no', kill_sleeper: 'no' });
      // Only the sandbox's own few processes are there (bwrap, the shell, ls and grep).
      expect(Number(found['pids'])).toBeLessThan(8);
      expect(sleeper.exitCode).toBeNull();
      expect(sleeper.signalCode).toBeNull();
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('Unix sockets in /tmp, /run and elsewhere on the host lead nowhere; --allow-socket opens one, audited', async () => {
    const probe = (path: string) =>
      `python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(64).decode().strip())" ${path}`;
    const found = await checks(socketPaths.map((path, i) => verdict(`socket${i}`, probe(path))).join(' '));
    expect(found).toEqual({ socket0: 'no', socket1: 'no', socket2: 'no' });
    expect(socketConnections).toBe(0);
    // A pipe of the command's own (socketpair) still works: the filter stops reaching out, not IPC.
    const pair = await contained(['python3', '-c', 'import socket; a, b = socket.socketpair(); a.send(b"x"); print(b.recv(1).decode())']);
    expect(pair.stdout.trim(), pair.stderr).toBe('x');
    // Named, the one socket is reachable (the others still are not), and the start is audited.
    const allowed = socketPaths[2]!;
    const opened = await checks(socketPaths.map((path, i) => `echo socket${i}=$(${probe(path)} 2>/dev/null || echo no);`).join(' '), [
      '--allow-socket',
      allowed,
    ]);
    expect(opened).toEqual({ socket0: 'no', socket1: 'no', socket2: 'host service' });
    expect(socketConnections).toBe(1);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['action'] === 'contain_start'), 'the contain_start line');
    expect(line).toMatchObject({ decision: 'admin', agent: 'bot', via: 'contain' });
    expect(String(line['message'])).toContain(allowed);
  });

  it('a contained agent has one refusal budget, however many runs it makes (the running keyway counts them)', async () => {
    const full = () =>
      readFileSync(proxy.auditPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l['host'] === 'denied.example.test' && l['decision'] === 'deny' && l['repeated'] === undefined);
    for (let run = 0; run < 2; run++) {
      const r = await contained(['sh', '-c', 'for i in 1 2 3; do curl -s -o /dev/null -w "%{http_code} " https://denied.example.test/x; done']);
      // Refused: a host no grant covers, under unmatched: deny (closed before any HTTP answer).
      expect(r.stdout.trim(), r.stderr).toBe('000 000 000');
    }
    // Six identical refusals, two runs: written in full twice in all (each run counting its own wrote four).
    await waitFor(() => (full().length >= 2 ? true : undefined), 'the refusals');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(full()).toHaveLength(2);
  });

  it("the command is not in the terminal's session: it cannot push keystrokes into the shell that started it (TIOCSTI)", async () => {
    // `script` gives keyway a terminal, as a person's shell would; the command tries to type into it.
    const inject = "python3 -c \"import fcntl, termios; fcntl.ioctl(0, termios.TIOCSTI, b'#'); print('tiocsti=yes')\" || echo tiocsti=no";
    const line = cliShellLine(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', inject]);
    const r = await runProcess(
      'script',
      ['-qec', line, '/dev/null'],
      { PATH: process.env['PATH'] ?? '', HOME: userHome, SHELL: '/bin/sh', SUDO_UID: String(USER), SUDO_GID: String(USER), KEYWAY_HOME: home, ...proxy.env },
      undefined,
      30_000,
      workdir,
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toContain('tiocsti=no');
    expect(r.stdout).not.toContain('tiocsti=yes');
  });

  it("--allow-write makes one more folder writable; the working folder may not be inside keyway's home", async () => {
    const state = join(base, 'agent-state');
    mkdirSync(state);
    chownSync(state, USER, USER);
    const found = await checks([verdict('write_state', `touch ${state}/written`), verdict('write_base', `touch ${base}/written`)].join(' '), [
      '--allow-write',
      state,
    ]);
    expect(found).toEqual({ write_state: 'yes', write_base: 'no' });
    expect(statSync(join(state, 'written')).isFile()).toBe(true);
    const refused = await runProcess(
      ...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'true']),
      { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home, ...proxy.env },
      undefined,
      30_000,
      join(home, 'config'),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/inside .*keyway-home, which a contained command never sees/);
  });

  it("run as root, not behind sudo: the command is nobody; a folder root owns, inside root's closed home, stays writable to it (written as root on disk)", async () => {
    // A home like /root: 0700, root's, with a key in it; the project inside.
    const rootHome = mkdtempSync('/var/lib/keyway-reach-root-');
    const project = join(rootHome, 'project');
    mkdirSync(join(rootHome, '.ssh'));
    writeFileSync(join(rootHome, '.ssh', 'id_ed25519'), `${CANARY}-root-ssh\n`);
    writeFileSync(join(rootHome, '.bashrc'), '# root\n');
    mkdirSync(project);
    try {
      const script = [
        'id -u;',
        verdict('write_cwd', 'touch ./made-by-nobody'),
        verdict('read_ssh', `grep -q . ${rootHome}/.ssh/id_ed25519`),
        verdict('write_bashrc', `sh -c 'echo x >> ${rootHome}/.bashrc'`),
        verdict('write_etc', 'touch /etc/keyway-reach'),
        verdict('read_shadow', 'grep -q . /etc/shadow'),
      ].join(' ');
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', script]),
        { PATH: process.env['PATH'] ?? '', HOME: rootHome, KEYWAY_HOME: home, ...proxy.env },
        undefined,
        30_000,
        project,
      );
      outputs.push(r.stdout, r.stderr);
      expect(r.stdout.split('\n').filter(Boolean), r.stderr).toEqual([
        '65534',
        'write_cwd=yes',
        'read_ssh=no',
        // Its HOME is a throwaway inside (issue 84): the write succeeds there, and is dropped.
        'write_bashrc=yes',
        'write_etc=no',
        'read_shadow=no',
      ]);
      expect(r.stderr).toContain('CMD runs as uid 65534');
      expect(statSync(join(project, 'made-by-nobody')).uid).toBe(0);
      expect(readFileSync(join(rootHome, '.bashrc'), 'utf8')).toBe('# root\n');
      expect(r.stderr).toContain('keyway: dropped what the command wrote in its home');
    } finally {
      rmSync(rootHome, { recursive: true, force: true });
    }
  });
});
