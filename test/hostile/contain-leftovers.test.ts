// keyway run --contain, attacked as the outside test of issue 58 did: what the contained command
// leaves behind must run nothing later, outside, as the user or as root. Each escape they found is a
// check here, followed by what would run it outside (a real `git status`, a real login shell, a
// program run by name, a planted program run by another uid); controls beside them show that the
// same plant, made on the host, does fire (so a check that sees nothing means something), and that
// ordinary work still lands: a granted request injected, a file written, git add and commit.
//
// Run as root (CI is); the laptop is simulated with SUDO_UID as in contain-reach.test.ts: the
// command runs as uid 1000, which owns the user's home and the project.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cliCommand, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { runnableKeyway } from '../helpers/runnable-copy.ts';

const TOKEN = `${CANARY}-leftovers`;
const API_ADDRESS = `127.${160 + (process.pid % 90)}.1.4`;
const USER = 1000;

describe('keyway run --contain: nothing the command leaves behind runs later (issue 58)', () => {
  const base = mkdtempSync('/var/lib/keyway-leftovers-');
  const home = join(base, 'keyway-home');
  const userHome = join(base, 'user');
  const markers = join(base, 'markers');
  let upstream: HttpsServer;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    for (const dir of [home, userHome, markers]) mkdirSync(dir, { recursive: true });
    upstream = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      res.end(req.headers.authorization === `Bearer ${TOKEN}` ? 'ok' : 'no');
    });
    upstream.listen(443, API_ADDRESS);
    await once(upstream, 'listening');
    proxy = await startProxy({
      home,
      env: { API_TOKEN: TOKEN, BOT_KEY: 'bot-key-leftovers' },
      config: {
        proxy: { hosts: { 'api.example.test': API_ADDRESS }, allow_networks: ['127.0.0.0/8'], unmatched: 'deny' },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['api'] } },
      },
    });
    writeFileSync(join(userHome, '.bash_logout'), "# the user's\n");
    execFileSync('chown', ['-R', `${USER}:${USER}`, base]);
    execFileSync('chmod', ['0755', base]);
    chmodSync(markers, 0o777);
  });

  afterAll(async () => {
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    await proxy?.stop();
    upstream?.close();
    // The runs whose changes were kept aside here (their scratch folders in /var/tmp).
    for (const name of readdirSync('/var/tmp').filter((n) => n.startsWith('keyway-contain-'))) {
      const scratch = join('/var/tmp', name);
      const record = (() => {
        try {
          return JSON.parse(readFileSync(join(scratch, 'run.json'), 'utf8')) as { workdir?: string };
        } catch {
          return {};
        }
      })();
      if (record.workdir?.startsWith(base)) rmSync(scratch, { recursive: true, force: true });
    }
    rmSync(base, { recursive: true, force: true });
  });

  /** A fresh project folder of the user's, a git repository with one commit. */
  function project(name: string, owner = USER): string {
    const dir = join(base, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'README'), 'hello\n');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=u@example.test', '-c', 'user.name=u', ...args], { cwd: dir, stdio: 'ignore' });
    git('init', '-q', '-b', 'main');
    git('add', 'README');
    git('commit', '-qm', 'first');
    execFileSync('chown', ['-R', `${owner}:${owner}`, dir]);
    return dir;
  }

  function rootHome(): string {
    const folder = join(base, 'root-home');
    mkdirSync(folder, { recursive: true });
    return folder;
  }

  async function contained(cwd: string, script: string, options: { asRoot?: boolean; home?: string } = {}) {
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: options.home ?? userHome, KEYWAY_HOME: home, ...proxy.env };
    if (!options.asRoot) Object.assign(env, { SUDO_UID: String(USER), SUDO_GID: String(USER) });
    const r = await runProcess(...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', script]), env, undefined, 30_000, cwd);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  /** Runs a program outside, as `uid`, with the user's home: what the person does after the run. */
  function outside(uid: number, cwd: string, command: string[], extraEnv: Record<string, string> = {}) {
    return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...command], {
      cwd,
      encoding: 'utf8',
      timeout: 20_000,
      env: {
        PATH: `${userHome}/.local/bin:${userHome}/bin:/usr/local/bin:/usr/bin:/bin`,
        HOME: userHome,
        // The user trusts their own folders (git's safe.directory, which ownership checks need here).
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'safe.directory',
        GIT_CONFIG_VALUE_0: '*',
        ...extraEnv,
      },
    });
  }

  const fired = () => readdirSync(markers);
  /** A folder git takes for a bare repository, whose config names a work tree and an fsmonitor: no name in it is .git. */
  const barePlant = (folder: string, worktree: string, marker: string) =>
    `mkdir -p ${folder}/objects ${folder}/refs && echo 'ref: refs/heads/main' > ${folder}/HEAD && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = ${worktree}\\n\\tfsmonitor = "touch ${markers}/${marker}; false"\\n' > ${folder}/config`;
  const fsmonitor = (marker: string) => `[core]\n\tfsmonitor = "touch ${markers}/${marker}; false"\n`;

  it('the same plants made on the host do fire: each check below can see one', () => {
    const dir = project('control');
    mkdirSync(join(dir, 'sub', '.git'), { recursive: true });
    execFileSync('git', ['init', '-q', join(dir, 'sub')]);
    appendFileSync(join(dir, 'sub', '.git', 'config'), fsmonitor('control-git'));
    execFileSync('chown', ['-R', `${USER}:${USER}`, dir]);
    outside(USER, join(dir, 'sub'), ['git', 'status']);
    mkdirSync(join(userHome, '.local', 'bin'), { recursive: true });
    writeFileSync(join(userHome, '.bash_login'), `touch ${markers}/control-login\n`);
    execFileSync('chown', ['-R', `${USER}:${USER}`, userHome]);
    outside(USER, userHome, ['bash', '-l', '-c', 'true']);
    execFileSync('sh', ['-c', barePlant(join(dir, 'bare'), dir, 'control-bare')]);
    execFileSync('chown', ['-R', `${USER}:${USER}`, dir]);
    outside(USER, join(dir, 'bare'), ['git', 'status']);
    expect(fired().sort()).toEqual(['control-bare', 'control-git', 'control-login']);
    rmSync(join(userHome, '.bash_login'));
    for (const name of fired()) rmSync(join(markers, name));
  });

  it('git runs nothing the command planted: commondir, a new or moved .git, a nested one, a bare repository, config.worktree, attributes with a filter, .gitmodules, hooks', async () => {
    const dir = project('git-plants');
    const r = await contained(
      dir,
      [
        'echo ordinary > made-inside.txt;',
        'git add made-inside.txt && git -c user.email=a@example.test -c user.name=a commit -qm inside && echo committed;',
        `mkdir evil && git init -q evil && printf '${fsmonitor('commondir')}' >> evil/.git/config && echo ../evil/.git > .git/commondir;`,
        `printf '${fsmonitor('worktree')}' > .git/config.worktree;`,
        `mkdir -p .git/info && echo '* filter=evil' > .git/info/attributes;`,
        `mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch ${markers}/hook\\n' > .git/hooks/post-checkout && chmod 755 .git/hooks/post-checkout;`,
        `mkdir nested && git init -q nested && printf '${fsmonitor('nested')}' >> nested/.git/config;`,
        `mkdir moved && git init -q moved && printf '${fsmonitor('moved')}' >> moved/.git/config && mv moved/.git moved/.git-old && mv moved/.git-old moved/.git;`,
        `${barePlant('bare', dir, 'bare')};`,
        `printf '[submodule "s"]\\n\\tpath = s\\n\\turl = ./evil\\n\\tupdate = !touch ${markers}/submodule\\n' > .gitmodules;`,
        'true',
      ].join(' '),
    );
    expect(r.stdout, r.stderr).toContain('committed');
    expect(r.stderr).toMatch(/kept aside \d+ of the command's changes/);
    for (const folder of [dir, join(dir, 'nested'), join(dir, 'moved'), join(dir, 'evil'), join(dir, 'bare')]) {
      if (existsSync(folder)) outside(USER, folder, ['git', 'status']);
    }
    outside(USER, dir, ['git', 'checkout', '-q', '-b', 'after']);
    expect(fired()).toEqual([]);
    // Controls: the ordinary file and the commit landed, the project's own .git is whole.
    expect(readFileSync(join(dir, 'made-inside.txt'), 'utf8')).toBe('ordinary\n');
    const log = outside(USER, dir, ['git', 'log', '--format=%s']);
    expect(log.stdout.trim().split('\n')).toEqual(['inside', 'first']);
    expect(existsSync(join(dir, '.git', 'commondir'))).toBe(false);
    expect(existsSync(join(dir, 'nested', '.git'))).toBe(false);
    // What was kept is listed for review, with why.
    const review = await runProcess(
      ...cliCommand(['contain', 'review', '--json']),
      { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home },
      undefined,
      30_000,
      dir,
    );
    const runs = JSON.parse(review.stdout).runs as Array<{ workdir: string; kept: Array<{ path: string; why: string }> }>;
    const kept = runs.find((run) => run.workdir === dir)!.kept.map((k) => k.path);
    for (const path of ['.git/commondir', '.git/config.worktree', '.git/info/attributes', '.git/hooks/post-checkout', 'nested/.git', 'moved/.git', 'bare/HEAD'])
      expect(kept, path).toContain(join(dir, path));
  });

  it('start-up files and programs on PATH the command made in the home run nothing: a login shell, git and a program by name', async () => {
    // The home itself is never a working folder (issue 84): refused, nothing run.
    const fromHome = await contained(userHome, 'echo ran');
    expect(fromHome.code).toBe(2);
    expect(fromHome.stderr).toContain('is your home folder itself');
    // From a project, what the command writes in its (throwaway) home is dropped at its exit.
    const r = await contained(
      project('home-writes'),
      [
        'cd "$HOME";',
        `echo 'touch ${markers}/bash_profile' > .bash_profile;`,
        `echo 'touch ${markers}/bash_login' > .bash_login;`,
        `echo 'touch ${markers}/bash_logout' >> .bash_logout;`,
        `echo 'touch ${markers}/zshenv' > .zshenv;`,
        `mkdir -p .config/git && printf '${fsmonitor('gitconfig')}' > .config/git/config;`,
        `mkdir -p .local/bin bin && printf '#!/bin/sh\\ntouch ${markers}/path-git\\n' > .local/bin/git && chmod 755 .local/bin/git && cp .local/bin/git bin/git;`,
        'echo note > notes.txt',
      ].join(' '),
    );
    expect(r.code, r.stderr).toBe(0);
    const repo = project('home-check');
    outside(USER, userHome, ['bash', '-l', '-c', 'exit 0']);
    outside(USER, repo, ['sh', '-c', 'git status']);
    expect(fired()).toEqual([]);
    expect(readFileSync(join(userHome, '.bash_logout'), 'utf8')).toBe("# the user's\n");
    for (const name of ['.bash_profile', '.bash_login', '.zshenv', '.config/git/config', '.local/bin/git', 'bin/git'])
      expect(existsSync(join(userHome, name)), name).toBe(false);
    expect(existsSync(join(userHome, 'notes.txt'))).toBe(false);
    expect(r.stderr).toContain('keyway: dropped what the command wrote in its home');
  });

  it('no set-id bit and no file capability crosses out: chmod, open with a mode, mkdir, cp -p, tar, install, setxattr', async () => {
    // As root, not behind sudo: the command is nobody, and the root-owned folder is idmapped, so what it makes is root's on disk.
    const dir = project('setid', 0);
    const source = join(base, 'setid-source');
    mkdirSync(source);
    execFileSync('cp', ['/usr/bin/id', join(source, 'id-suid')]);
    chmodSync(join(source, 'id-suid'), 0o4755);
    execFileSync('tar', ['-cf', join(dir, 'plant.tar'), '-C', source, 'id-suid']);
    const r = await contained(
      dir,
      [
        'cp /usr/bin/id chmod-u && chmod 4755 chmod-u;',
        'cp /usr/bin/id chmod-g && chmod g+s chmod-g;',
        'cp /usr/bin/id fchmodat2 && chmod u+s fchmodat2;',
        `python3 -c "import os; fd = os.open('open-mode', os.O_CREAT | os.O_WRONLY, 0o6755); os.close(fd)";`,
        'mkdir -m 2755 mkdir-g;',
        `cp -p ${source}/id-suid cp-p;`,
        'mkdir untar && tar -xpf plant.tar -C untar;',
        'install -m 4755 /usr/bin/id installed;',
        `python3 -c "import os; open('cap', 'w').close(); os.setxattr('cap', 'security.capability', bytes(20))" 2>/dev/null || echo setxattr-refused;`,
        'true',
      ].join(' '),
      // Root's HOME a folder of its own: the whole of HOME is absent inside (issue 84), and the source must be in sight.
      { asRoot: true, home: rootHome() },
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toContain('setxattr-refused');
    const modes: Record<string, number> = {};
    const walk = (folder: string) => {
      for (const name of readdirSync(folder)) {
        const path = join(folder, name);
        const stat = statSync(path);
        if (!path.includes('/.git/')) modes[path.slice(dir.length + 1)] = stat.mode & 0o7777;
        if (stat.isDirectory() && name !== '.git') walk(path);
      }
    };
    walk(dir);
    // Each lands without the bit (chmod, cp -p and tar make the file, then are refused the mode),
    // or not at all (open and mkdir with a set-id mode are refused whole).
    for (const name of ['chmod-u', 'chmod-g', 'fchmodat2', 'cp-p', 'untar/id-suid']) expect(modes[name], `${name} landed`).toBeDefined();
    expect(Object.keys(modes).length).toBeGreaterThan(5);
    for (const [name, mode] of Object.entries(modes)) expect(mode & 0o6000, `${name}: ${mode.toString(8)}`).toBe(0);
    expect(statSync(join(dir, 'chmod-u')).uid).toBe(0);
    // Run by another uid, the planted programs say who they are: never root.
    for (const name of ['chmod-u', 'cp-p', 'untar/id-suid']) expect(outside(65534, dir, [join(dir, name), '-u']).stdout.trim(), name).toBe('65534');
    const caps = spawnSync('python3', ['-c', `import os; print(os.listxattr(${JSON.stringify(join(dir, 'cap'))}))`], { encoding: 'utf8' });
    expect(caps.stdout.trim(), caps.stderr).toBe('[]');
  });

  it('a sealed process: no user namespace, no descriptor the launcher left open, no socket family but IP', async () => {
    const dir = project('sealed');
    // A host TCP listener the launcher holds a connection to, left open (not close-on-exec) at fd 5.
    const heard: string[] = [];
    const listener: NetServer = createNetServer((socket: Socket) => socket.on('data', (d: Buffer) => heard.push(d.toString())));
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const socket = connect((listener.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    const script = [
      'unshare -U true 2>/dev/null && echo userns=yes || echo userns=no;',
      `python3 -c "import os; os.unshare(0x10000000)" 2>/dev/null && echo py_userns=yes || echo py_userns=no;`,
      // What a program the shell starts holds: its three, and the folder ls opens to list them (3).
      // (Listing the shell's own folder from a command substitution races the shell closing the
      // substitution's write end, so ls reads its own.)
      'printf fds=; ls /proc/self/fd | tr "\\n" " "; echo;',
      '(echo from-inside >&5) 2>/dev/null && echo fd5=yes || echo fd5=no;',
      `python3 -c "import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)" 2>/dev/null && echo vsock=yes || echo vsock=no;`,
      `python3 -c "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)" 2>/dev/null && echo packet=yes || echo packet=no;`,
      `python3 -c "import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)" 2>/dev/null && echo sock_diag=yes || echo sock_diag=no;`,
      'echo granted=$(curl -sS https://api.example.test/v1/sealed)',
    ].join(' ');
    const child = spawn(...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', script]), {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home, SUDO_UID: String(USER), SUDO_GID: String(USER), ...proxy.env },
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', socket],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const [code] = await once(child, 'exit');
    outputs.push(stdout, stderr);
    socket.destroy();
    listener.close();
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('userns=no');
    expect(stdout).toContain('py_userns=no');
    expect(stdout).toMatch(/fds=0 1 2 3 \n/);
    expect(stdout).toContain('fd5=no');
    expect(stdout).toContain('vsock=no');
    expect(stdout).toContain('packet=no');
    expect(stdout).toContain('sock_diag=no');
    expect(stdout).toContain('granted=ok');
    expect(heard).toEqual([]);
  });

  it("a working folder that would defeat containment is refused with one line, exit 2: /, one holding keyway's home, one inside a .git", async () => {
    const env = { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home, ...proxy.env };
    for (const [cwd, pattern] of [
      ['/', /contain_refused: the working folder is \//],
      [base, /contain_refused: the working folder .* holds keyway's own/],
      [join(project('inside-git'), '.git'), /contain_refused: .* is inside a \.git folder/],
    ] as const) {
      const r = await runProcess(...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'true']), env, undefined, 30_000, cwd);
      outputs.push(r.stdout, r.stderr);
      expect(r.code, cwd).toBe(2);
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.includes('contain_refused')),
      ).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/unshare failed|Operation not permitted/);
    }
  });

  it('a run killed before its end reached the host with nothing; review lists it, and --apply settles it as its exit would have', async () => {
    const dir = project('killed');
    const script = `echo kept > work.txt; mkdir -p sub/.git; printf '${fsmonitor('killed')}' > sub/.git/config; echo started; sleep 60`;
    const child = spawn(...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', script]), {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home, SUDO_UID: String(USER), SUDO_GID: String(USER), ...proxy.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    for (let i = 0; i < 200 && !stdout.includes('started'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stdout).toContain('started');
    // keyway, unshare and the process that would settle the run, killed at once (an OOM kill, a power cut).
    process.kill(-child.pid!, 'SIGKILL');
    await once(child, 'exit');
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(dir, 'work.txt'))).toBe(false);
    const env = { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: home };
    const listed = await runProcess(...cliCommand(['contain', 'review', '--json']), env, undefined, 30_000, dir);
    const run = (JSON.parse(listed.stdout).runs as Array<{ id: string; workdir: string; state: string }>).find((r) => r.workdir === dir)!;
    expect(run.state).toBe('unfinished');
    const applied = await runProcess(...cliCommand(['contain', 'review', run.id, '--apply']), env, undefined, 30_000, dir);
    outputs.push(applied.stdout, applied.stderr);
    expect(applied.stdout, applied.stderr).toContain('never finished');
    expect(readFileSync(join(dir, 'work.txt'), 'utf8')).toBe('kept\n');
    // --apply of an unfinished run puts in place what its exit would have; the .git it made stays aside.
    expect(existsSync(join(dir, 'sub', '.git'))).toBe(false);
    outside(USER, dir, ['git', 'status']);
    expect(fired()).toEqual([]);
    const shown = await runProcess(...cliCommand(['contain', 'review', run.id]), env, undefined, 30_000, dir);
    expect(shown.stdout).toContain(`${join(dir, 'sub', '.git', 'config')}: a git repository the command made or moved`);
  });

  it('keyway itself run by an ordinary user (not root): the git, start-up and set-id plants run nothing; the granted request is injected', async () => {
    // A copy of keyway every user can run (as the service installs one), so the test holds from a 0700 checkout too.
    const runnable = runnableKeyway();
    await asOrdinaryUser([runnable.node, runnable.cli]);
  });

  async function asOrdinaryUser([node, main]: string[]) {
    const ownHome = join(base, 'user-keyway');
    mkdirSync(ownHome);
    mkdirSync(join(ownHome, 'config'));
    writeFileSync(join(ownHome, 'upstream-ca.pem'), readFileSync(TLS_FIXTURES.caPath));
    writeFileSync(
      join(ownHome, 'config', 'keyway.yaml'),
      [
        'proxy:',
        `  hosts: {api.example.test: '${API_ADDRESS}'}`,
        "  allow_networks: ['127.0.0.0/8']",
        '  upstream_ca: [upstream-ca.pem]',
        'admin: {enabled: false}',
        'grants:',
        '  api: {type: bearer, domains: [api.example.test], secret: env:API_TOKEN}',
        '',
      ].join('\n'),
    );
    execFileSync('chown', ['-R', `${USER}:${USER}`, ownHome]);
    const dir = project('ordinary');
    const env = { PATH: process.env['PATH'] ?? '', HOME: userHome, KEYWAY_HOME: ownHome, API_TOKEN: TOKEN };
    const init = spawnSync(node!, [main!, 'init'], { uid: USER, gid: USER, env, encoding: 'utf8', cwd: dir });
    expect(init.status, init.stderr).toBe(0);
    const script = [
      `printf '${fsmonitor('ordinary-commondir')}' > .git/config.worktree; echo ../x > .git/commondir;`,
      `mkdir n && git init -q n && printf '${fsmonitor('ordinary-nested')}' >> n/.git/config;`,
      'cp /usr/bin/id suid && chmod 4755 suid 2>/dev/null;',
      'unshare -U true 2>/dev/null && echo userns=yes || echo userns=no;',
      'echo granted=$(curl -sS https://api.example.test/v1/ordinary)',
    ].join(' ');
    // Not spawnSync: the API answers from this process.
    const child = spawn(node!, [main!, 'run', '--contain', '--outside-home', '--', 'sh', '-c', script], {
      uid: USER,
      gid: USER,
      env,
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ran = { stdout: '', stderr: '' };
    child.stdout!.on('data', (d: Buffer) => (ran.stdout += d));
    child.stderr!.on('data', (d: Buffer) => (ran.stderr += d));
    const [status] = await once(child, 'exit');
    outputs.push(ran.stdout, ran.stderr);
    expect(status, ran.stderr).toBe(0);
    expect(ran.stdout, ran.stderr).toContain('granted=ok');
    expect(ran.stdout).toContain('userns=no');
    outside(USER, dir, ['git', 'status']);
    outside(USER, join(dir, 'n'), ['git', 'status']);
    expect(fired()).toEqual([]);
    expect(statSync(join(dir, 'suid')).mode & 0o6000).toBe(0);
    expect(existsSync(join(dir, 'n', '.git'))).toBe(false);
  }

  it('what a second look found: a hooks folder or include the config names, a repository under another name, a linked or relative PATH folder, a mode, a deletion', async () => {
    const dir = project('second-look');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'safe.directory=*', ...args], { cwd: dir, stdio: 'ignore' });
    // The project's own configuration: husky's hooks folder, a shared config file in the tree.
    git('config', 'core.hooksPath', '.githooks');
    git('config', 'include.path', '../.gitconfig.shared');
    writeFileSync(join(dir, '.gitconfig.shared'), '[user]\n\tname = u\n');
    // Repositories under other names: a bare one, and a work tree whose git folder is elsewhere.
    git('init', '-q', '--bare', 'srv.git');
    mkdirSync(join(dir, 'meta'));
    git('init', '-q', `--separate-git-dir=${join(dir, 'meta', 'sub')}`, 'sub');
    // PATH: a folder through a link, and one named relative to where a person stands.
    mkdirSync(join(dir, 'tools'));
    const linkParent = mkdtempSync('/var/lib/keyway-leftovers-link-');
    execFileSync('ln', ['-s', join(dir, 'tools'), join(linkParent, 'tools')]);
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'docs', 'a.txt'), 'docs\n');
    execFileSync('chown', ['-R', `${USER}:${USER}`, dir]);
    const script = [
      `mkdir -p .githooks && printf '#!/bin/sh\\ntouch ${markers}/hookspath\\n' > .githooks/pre-commit && chmod 755 .githooks/pre-commit;`,
      `printf '${fsmonitor('include')}' >> .gitconfig.shared;`,
      `printf '#!/bin/sh\\ntouch ${markers}/bare-hook\\n' > srv.git/hooks/post-update && chmod 755 srv.git/hooks/post-update;`,
      `printf '${fsmonitor('separate')}' >> meta/sub/config;`,
      `printf '#!/bin/sh\\ntouch ${markers}/linked-path\\n' > tools/lsx && chmod 755 tools/lsx;`,
      `mkdir -p node_modules/.bin && printf '#!/bin/sh\\ntouch ${markers}/relative-path\\n' > node_modules/.bin/gitx && chmod 755 node_modules/.bin/gitx;`,
      'chmod 777 .git;',
      'rm -rf .git/objects .git/refs;',
      // A link from the project into the run's own kept-aside changes (their path is in mountinfo).
      `mkdir evil && git init -q evil && printf '${fsmonitor('link-to-kept')}' >> evil/.git/config;`,
      'UP=$(grep -o "upperdir=[^,]*" /proc/self/mountinfo | head -1 | cut -d= -f2); rm -rf docs && ln -s "$UP/evil" docs;',
      'true',
    ].join(' ');
    try {
      const r = await runProcess(
        ...cliCommand(['run', '--contain', '--outside-home', '--agent', 'bot', '--', 'sh', '-c', script]),
        {
          PATH: `${join(linkParent, 'tools')}:node_modules/.bin:${process.env['PATH'] ?? ''}`,
          HOME: userHome,
          KEYWAY_HOME: home,
          SUDO_UID: String(USER),
          SUDO_GID: String(USER),
          ...proxy.env,
        },
        undefined,
        30_000,
        dir,
      );
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
      outside(USER, dir, ['git', '-c', 'user.email=u@example.test', 'commit', '-q', '--allow-empty', '-m', 'after']);
      outside(USER, join(dir, 'sub'), ['git', 'status']);
      outside(USER, join(dir, 'docs'), ['git', 'status']);
      expect(readFileSync(join(dir, 'docs', 'a.txt'), 'utf8')).toBe('docs\n');
      outside(USER, dir, ['git', 'push', '-q', './srv.git', 'HEAD:refs/heads/main']);
      outside(USER, dir, ['sh', '-c', `PATH=${join(linkParent, 'tools')}:node_modules/.bin:$PATH; lsx; gitx`]);
      expect(fired()).toEqual([]);
      // The repository is whole, and no one but its owner may write its folder.
      expect(outside(USER, dir, ['git', 'log', '--format=%s']).stdout.trim().split('\n')).toEqual(['after', 'first']);
      expect(statSync(join(dir, '.git')).mode & 0o022).toBe(0);
    } finally {
      rmSync(linkParent, { recursive: true, force: true });
    }
  });
});
