// keyway run --contain shows only what is named (issue 84): every home folder is empty inside but
// for the working folder, the programs, --allow-read/--allow-write and a git configuration that runs
// nothing; keyway's homes (another home's, a running keyway's) are absent whatever is named; a working
// folder outside a home and the scratch places is refused; --allow-socket opens the named socket
// alone; a profile's state is a folder keyway keeps, so what the agent writes there never reaches
// the person's own. Run as root (CI): the command runs as nobody, and every canary below is a file
// nobody could read were the home shown, so each assertion would fail on the code before.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { CLI, cliCommand, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { runnableKeyway } from '../helpers/runnable-copy.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-home-view`;
/** An ordinary user of the test's own, for keyway run by someone who is not root. */
const USER = 50_000 + (process.pid % 10_000);

describe('keyway run --contain: a home that shows only what is named', () => {
  const base = mkdtempSync('/var/lib/keyway-home-view-');
  const home = join(base, 'home');
  const project = join(home, 'project');
  const otherHome = join(base, 'other-keyway');
  const sockets = join(base, 'sockets');
  let proxy: TestProxy;
  let other: ChildProcess | undefined;
  const servers: Server[] = [];
  const outputs: string[] = [];

  const contained = async (options: string[], script: string, cwd = project, env: Record<string, string> = {}) => {
    const r = await runProcess(
      ...cliCommand(['run', '--contain', ...options, '--', 'sh', '-c', script]),
      { PATH: process.env['PATH'] ?? '', HOME: home, KEYWAY_HOME: proxy.home, ...proxy.env, ...env },
      undefined,
      60_000,
      cwd,
    );
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  beforeAll(async () => {
    chmodSync(base, 0o755);
    for (const dir of [home, project, sockets, join(home, '.codex'), join(home, '.config', 'git'), join(home, 'notes'), join(home, '.keyway', 'data')]) {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      chmodSync(dir, 0o755);
    }
    // Canaries a contained command could read as nobody were the home shown (every file 0644).
    const planted: Record<string, string> = {
      '.codex/auth.json': `{"OPENAI_API_KEY":"${SECRET}"}`,
      '.config/git/credentials': `https://x:${SECRET}@github.com\n`,
      '.bash_history': `export TOKEN=${SECRET}\n`,
      'notes/secret.txt': SECRET,
      '.keyway/data/master.key': SECRET,
      '.gitconfig': '[user]\n\tname = Person\n\temail = person@example.test\n',
    };
    for (const [rel, text] of Object.entries(planted)) writeFileSync(join(home, rel), text, { mode: 0o644 });
    writeFileSync(join(project, 'README.md'), 'project\n', { mode: 0o644 });
    proxy = await startProxy({ config: { proxy: { unmatched: 'deny' } } });
  });

  afterAll(async () => {
    other?.kill('SIGTERM');
    for (const server of servers) server.close();
    await proxy?.stop();
    for (const text of [...outputs, ...proxy.logs]) expect(findLeak(text, SECRET)).toBeUndefined();
    rmSync(base, { recursive: true, force: true });
  });

  it('the home is empty but for what the run names: no login file, history, note or other keyway home; the project and an inert ~/.gitconfig are there', async () => {
    const files = ['.codex/auth.json', '.config/git/credentials', '.bash_history', 'notes/secret.txt', '.keyway/data/master.key'];
    // Read, never printed: the canary stays out of every output.
    const script = `${files.map((f) => `cat "$HOME/${f}" >/dev/null 2>&1 && echo "READ ${f}"`).join('; ')}; cat README.md; git config --get user.name; echo done`;
    const r = await contained([], script);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('READ');
    expect(r.stdout).toContain('project\nPerson\ndone');
    // Named with --allow-read, the home shows, and keyway's home in it and the credential files still do not.
    const named = await contained(['--allow-read', home], script);
    expect(named.stdout).toContain('READ notes/secret.txt');
    expect(named.stdout).not.toContain('READ .keyway/data/master.key');
  });

  it('a ~/.gitconfig that names a credential helper is not shown, and the run says why', async () => {
    writeFileSync(join(home, '.gitconfig'), '[user]\n\tname = Person\n[credential]\n\thelper = store\n', { mode: 0o644 });
    try {
      const r = await contained([], 'git config --get user.name || echo no-name');
      expect(r.stdout).toBe('no-name\n');
      expect(r.stderr).toContain(`${home}/.gitconfig is not shown to the command: it sets credential.helper`);
    } finally {
      writeFileSync(join(home, '.gitconfig'), '[user]\n\tname = Person\n\temail = person@example.test\n', { mode: 0o644 });
    }
  });

  it('what the command writes in its home is dropped when it exits, and said', async () => {
    const r = await contained([], 'echo planted > "$HOME/.bashrc" && mkdir -p "$HOME/.npm/x" && echo ok');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(home, '.bashrc'))).toBe(false);
    expect(r.stderr).toMatch(/keyway: dropped what the command wrote in its home .*~\/\.bashrc, ~\/\.npm/);
  });

  it('a system folder, or any folder outside a home and /tmp, is refused as the working folder; --outside-home admits one', async () => {
    const refused = await contained([], 'echo ran', '/etc');
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('contain_refused: the working folder /etc is neither in a home folder nor in /tmp, /var/tmp');
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o755 });
    const plain = await contained([], 'echo ran', elsewhere);
    expect(plain.code).toBe(2);
    const admitted = await contained(['--outside-home'], 'echo ran', elsewhere);
    expect(admitted.code, admitted.stderr).toBe(0);
    expect(admitted.stdout).toBe('ran\n');
    const ownHome = await contained([], 'echo ran', home);
    expect(ownHome.code).toBe(2);
    expect(ownHome.stderr).toContain('is your home folder itself');
  });

  it('another keyway home with a keyway running on it is absent, and --allow-socket opens the socket it names, never another', async () => {
    // A second home, outside every home folder, served by a real keyway with its door open.
    const init = await runProcess(...cliCommand(['init']), { PATH: process.env['PATH'] ?? '', KEYWAY_HOME: otherHome }, undefined, 60_000);
    expect(init.code, init.stderr).toBe(0);
    writeFileSync(join(otherHome, 'config.yaml'), 'proxy:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n');
    chmodSync(otherHome, 0o755);
    other = spawn(...cliCommand(['start']), { env: { PATH: process.env['PATH'] ?? '', KEYWAY_HOME: otherHome }, stdio: 'ignore' });
    const running = join(otherHome, 'data', 'running');
    const door = await waitFor(
      () => (existsSync(running) ? readdirNames(running).find((n) => n.endsWith('.sock')) : undefined),
      'the other keyway door',
      30_000,
    );
    const doorPath = join(running, door);
    // Two sockets of our own, anyone may connect: one named, one not.
    const named = join(sockets, 'named.sock');
    const unnamed = join(sockets, 'unnamed.sock');
    for (const path of [named, unnamed]) {
      const server = createServer((socket) => socket.end('hello\n'));
      server.listen(path);
      await new Promise((resolve) => server.once('listening', resolve));
      chmodSync(path, 0o777);
      servers.push(server);
    }
    const connect = (path: string) =>
      `python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('CONNECTED', s.recv(16))" ${path} 2>/dev/null || echo "REFUSED ${path}"`;
    const r = await contained(
      ['--allow-read', base, '--allow-socket', named],
      `${connect(named)}; ${connect(unnamed)}; ${connect(doorPath)}; ls ${otherHome} | wc -l`,
    );
    expect(r.stdout, r.stderr).toContain("CONNECTED b'hello\\n'");
    expect(r.stdout).toContain(`REFUSED ${unnamed}`);
    expect(r.stdout).toContain(`REFUSED ${doorPath}`);
    // The other home is an empty folder inside.
    expect(r.stdout.trim().split('\n').at(-1)).toBe('0');
  });

  it("a profile's state is keyway's own copy: a hook the agent plants never reaches the person's ~/.claude, and the next contained run finds it", async () => {
    mkdirSync(join(home, '.claude'), { recursive: true, mode: 0o755 });
    writeFileSync(join(home, '.claude', 'settings.json'), '{"theme":"light"}\n');
    const plant = `cat "$HOME/.claude/settings.json" 2>/dev/null || echo none; echo '{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"touch /tmp/pwned"}]}]}}' > "$HOME/.claude/settings.json"; echo planted`;
    const first = await contained(['--profile', 'claude-code'], plant);
    expect(first.code, first.stderr).toBe(0);
    // The person's own settings are not what the contained agent sees, and stay as they were.
    expect(first.stdout).toBe('none\nplanted\n');
    expect(readFileSync(join(home, '.claude', 'settings.json'), 'utf8')).toBe('{"theme":"light"}\n');
    const kept = join(proxy.home, 'profiles-state', 'claude-code', 'local', '.claude', 'settings.json');
    expect(readFileSync(kept, 'utf8')).toContain('SessionStart');
    const second = await contained(['--profile', 'claude-code'], 'cat "$HOME/.claude/settings.json"');
    expect(second.stdout).toContain('SessionStart');
    expect(readFileSync(join(home, '.claude', 'settings.json'), 'utf8')).toBe('{"theme":"light"}\n');
  });

  it('a keyway home reached through a linked folder is absent where it really is (outside test, issue 84)', async () => {
    // ~/lnk leads out of the home, to a folder nobody's uid could read were it shown.
    const real = join(base, 'real');
    mkdirSync(real, { mode: 0o755 });
    chmodSync(real, 0o755);
    symlinkSync(real, join(home, 'lnk'));
    const linked = join(home, 'lnk', 'kw');
    const init = await runProcess(...cliCommand(['init']), { PATH: process.env['PATH'] ?? '', KEYWAY_HOME: linked }, undefined, 60_000);
    expect(init.code, init.stderr).toBe(0);
    writeFileSync(join(real, 'kw', 'data', 'canary'), SECRET, { mode: 0o644 });
    execFileSync('chmod', ['-R', 'a+rX', join(real, 'kw')]);
    // keyway run --contain on that home, which starts a keyway of its own for it.
    const r = await runProcess(
      ...cliCommand(['run', '--contain', '--', 'sh', '-c', `cat ${real}/kw/data/canary >/dev/null 2>&1 && echo READ; ls -A ${real}/kw | wc -l`]),
      { PATH: process.env['PATH'] ?? '', HOME: home, KEYWAY_HOME: linked },
      undefined,
      60_000,
      project,
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('0\n');
  });

  it("what a link of the home's start-up names leads to in the working folder is kept aside (a dotfiles checkout)", async () => {
    const dotfiles = join(home, 'dotfiles');
    mkdirSync(dotfiles, { mode: 0o755 });
    writeFileSync(join(dotfiles, 'bashrc'), '# mine\n', { mode: 0o644 });
    symlinkSync(join(dotfiles, 'bashrc'), join(home, '.bashrc'));
    try {
      const r = await contained([], 'echo "touch /tmp/pwned" >> bashrc; echo notes > README.md', dotfiles);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(dotfiles, 'bashrc'), 'utf8')).toBe('# mine\n');
      expect(readFileSync(join(dotfiles, 'README.md'), 'utf8')).toBe('notes\n');
      expect(r.stderr).toContain(`${home}/.bashrc in your home leads here`);
    } finally {
      rmSync(join(home, '.bashrc'), { force: true });
    }
  });

  it('a PATH entry that is a link to the home shows nothing of it (second outside test, issue 84)', async () => {
    symlinkSync(home, join(home, 'pathlink'));
    try {
      const r = await contained([], `cat ${home}/pathlink/notes/secret.txt >/dev/null 2>&1 && echo READ; echo done`, project, {
        PATH: `${home}/pathlink:${process.env['PATH'] ?? ''}`,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('done\n');
    } finally {
      rmSync(join(home, 'pathlink'), { force: true });
    }
  });

  it('a home bound from elsewhere is absent at its other name too (second outside test, issue 84)', async () => {
    // In a mount namespace of its own, as a machine with homes on another disk has them: /var/lib/…/store/bound -> …/bound-home.
    const store = join(base, 'store', 'bound');
    const boundHome = join(base, 'bound-home');
    mkdirSync(join(store, 'project'), { recursive: true });
    mkdirSync(boundHome);
    writeFileSync(join(store, 'canary'), SECRET, { mode: 0o644 });
    execFileSync('chmod', ['-R', 'a+rX', join(base, 'store')]);
    const script = `cat ${store}/canary >/dev/null 2>&1 && echo READ; ls -A ${store} | wc -l`;
    const r = await runProcess(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount --bind "$1" "$2" && cd "$2/project" && shift 2 && exec "$@"',
        'sh',
        store,
        boundHome,
        process.execPath,
        CLI,
        'run',
        '--contain',
        '--',
        'sh',
        '-c',
        script,
      ],
      { PATH: process.env['PATH'] ?? '', HOME: boundHome, KEYWAY_HOME: proxy.home, ...proxy.env },
      undefined,
      60_000,
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('0\n');
  });

  it('as an ordinary user: its own files in its home and a folder it owns outside it are absent; its project is there', async () => {
    const { node, cli } = runnableKeyway();
    const userHome = join(base, 'ordinary');
    const userProject = join(userHome, 'project');
    // A folder of the user's near the top of the tree (/srv/NAME): not a home, still the person's.
    const owned = mkdtempSync('/srv/keyway-owned-');
    for (const dir of [userHome, userProject, join(userHome, '.codex')]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(userHome, '.codex', 'auth.json'), `{"OPENAI_API_KEY":"${SECRET}"}`, { mode: 0o600 });
    writeFileSync(join(owned, 'notes.txt'), SECRET, { mode: 0o600 });
    writeFileSync(join(userProject, 'README.md'), 'mine\n');
    execFileSync('chown', ['-R', `${USER}:${USER}`, userHome, owned]);
    const env = { PATH: `${join(node, '..')}:/usr/sbin:/usr/bin:/bin`, HOME: userHome, KEYWAY_HOME: join(userHome, '.keyway') };
    const asUser = async (...args: string[]) => {
      const r = await runProcess(
        'setpriv',
        [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '--', node, cli, ...args],
        env,
        undefined,
        60_000,
        userProject,
      );
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    try {
      expect((await asUser('init')).code).toBe(0);
      const r = await asUser(
        'run',
        '--contain',
        '--',
        'sh',
        '-c',
        `cat "$HOME/.codex/auth.json" >/dev/null 2>&1 && echo READ-auth; cat ${owned}/notes.txt >/dev/null 2>&1 && echo READ-owned; ls -A "$HOME/.keyway" 2>/dev/null | wc -l; id -u; cat README.md`,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`0\n${USER}\nmine\n`);
      // The control: outside, the same user reads both.
      const outside = execFileSync(
        'setpriv',
        [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '--', 'sh', '-c', `cat ${owned}/notes.txt >/dev/null && echo readable`],
        {
          encoding: 'utf8',
        },
      );
      expect(outside).toBe('readable\n');
    } finally {
      rmSync(owned, { recursive: true, force: true });
    }
  }, 180_000);
});

function readdirNames(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
