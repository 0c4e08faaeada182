// What a contained command sees of the homes (issue 84), its pure parts: bwrap's arguments for an
// absent home with a throwaway HOME and what the run names bound back, a socket nobody named, the
// place a working folder may be, and which login file may be copied into a profile's kept state.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mounts } from '../helpers/bwrap-mounts.ts';
import { loginRefusal, seedLogin } from '../../src/profiles/run/contained-state.ts';
import { outermost, programRoots, socketPaths } from '../../src/contain/home-view.ts';
import { bwrapArguments, folderPlaceProblem, type PathKind, type SandboxPlan } from '../../src/contain/sandbox.ts';

const plan: SandboxPlan = {
  uid: 1000,
  gid: 1000,
  workdir: '/home/u/project',
  writable: [],
  sockets: ['/srv/agent.sock'],
  absent: ['/home', '/root', '/srv/u'],
  throwawayHome: '/home/u',
  readable: ['/home/u/.gitconfig', '/home/u/.local/bin'],
  state: [{ source: '/home/u/.keyway/profiles-state/claude-code/local/.claude', target: '/home/u/.claude' }],
  hiddenSockets: ['/srv/agent.sock', '/srv/other.sock', '/home/u/.keyway/data/running/7.sock', '/var/lib/db/x.sock'],
  hide: ['/home/u/.keyway', '/other/keyway-home'],
  privateDirs: [],
  programs: ['/usr/bin', '/home/u/.local/bin'],
  homes: ['/home/u'],
  pathFolders: ['/usr/bin', '/home/u/.local/bin'],
  relativePathEntries: [],
  gitConfigured: [],
  homeLinked: [],
};
const files: Record<string, PathKind> = {
  '/tmp': 'dir',
  '/var/tmp': 'dir',
  '/run': 'dir',
  '/dev/shm': 'dir',
  '/home': 'dir',
  '/root': 'dir',
  '/srv/u': 'dir',
  '/home/u/.gitconfig': 'file',
  '/home/u/.local/bin': 'dir',
  '/home/u/.keyway': 'dir',
  '/other/keyway-home': 'dir',
  '/usr/bin': 'dir',
  '/srv/agent.sock': 'file',
  '/srv/other.sock': 'file',
  '/home/u/.keyway/data/running/7.sock': 'file',
};
const kind = (path: string) => files[path];

describe('bwrapArguments: a home that shows only what is named', () => {
  it('homes empty, HOME a throwaway, then what the run names bound back, keyway homes and unnamed sockets hidden, the homes read-only last', () => {
    expect(mounts(bwrapArguments(plan, kind, 3, () => false, '/tmp/keyway-contain-home-x'))).toEqual([
      '--ro-bind / /',
      '--tmpfs /tmp',
      '--tmpfs /var/tmp',
      '--tmpfs /run',
      '--tmpfs /dev/shm',
      '--tmpfs /home',
      '--tmpfs /root',
      '--tmpfs /srv/u',
      '--bind /tmp/keyway-contain-home-x /home/u',
      // A PATH folder in the home, and the admitted ~/.gitconfig: read-only.
      '--ro-bind /home/u/.local/bin /home/u/.local/bin',
      '--ro-bind /home/u/.gitconfig /home/u/.gitconfig',
      '--bind /home/u/project /home/u/project',
      '--bind /home/u/.keyway/profiles-state/claude-code/local/.claude /home/u/.claude',
      '--bind /srv/agent.sock /srv/agent.sock',
      // keyway's home in the throwaway HOME is not there to hide; another one elsewhere is.
      '--tmpfs /other/keyway-home',
      '--remount-ro /other/keyway-home',
      // The named socket stays; one nobody named is a null device; one out of reach is left alone.
      '--ro-bind-try /dev/null /srv/other.sock',
      '--remount-ro /home',
      '--remount-ro /root',
      '--remount-ro /srv/u',
      '--chdir /home/u/project',
      '--seccomp 3',
    ]);
  });

  it('with no throwaway HOME, a folder named to read may be a home itself, bound read-only over its emptiness', () => {
    const named = { ...plan, throwawayHome: undefined, readable: ['/home'], state: [], sockets: [], hiddenSockets: [] };
    const args = mounts(bwrapArguments(named, kind, 3));
    expect(args).toContain('--ro-bind /home /home');
    expect(args.indexOf('--ro-bind /home /home')).toBeGreaterThan(args.indexOf('--tmpfs /home'));
    // keyway's home is hidden after it, whatever was named.
    expect(args.indexOf('--tmpfs /home/u/.keyway')).toBeGreaterThan(args.indexOf('--ro-bind /home /home'));
  });
});

describe('folderPlaceProblem', () => {
  const homes = ['/home', '/home/u', '/root'];
  const scratch = ['/tmp', '/var/tmp'];
  it.each([
    ['/home/u/project', undefined],
    ['/home/other/project', undefined],
    ['/root/project', undefined],
    ['/tmp/work', undefined],
    ['/var/tmp/x/y', undefined],
  ])('admits %s', (path, problem) => {
    expect(folderPlaceProblem(path, 'the working folder', homes, scratch)).toBe(problem);
  });
  it.each(['/etc', '/etc/cron.d', '/srv/project', '/tmp', '/var/tmp', '/', '/usr/local/src'])('refuses %s, naming --outside-home', (path) => {
    expect(folderPlaceProblem(path, `the working folder ${path}`, homes, scratch)).toMatch(/--outside-home/);
  });
  it('refuses the home itself, --outside-home or not; admits the rest with it', () => {
    expect(folderPlaceProblem('/home/u', 'the working folder', homes, scratch, true)).toMatch(/your home folder itself/);
    expect(folderPlaceProblem('/etc', 'the working folder', homes, scratch, true)).toBeUndefined();
  });
  it('a name that starts with two dots is inside its folder, and .. is not', () => {
    expect(folderPlaceProblem('/home/u/..project', 'x', homes, scratch)).toBeUndefined();
    expect(folderPlaceProblem('/home/u/../../etc', 'x', ['/home/u'], scratch)).toMatch(/--outside-home/);
  });
});

describe('outermost', () => {
  it('keeps the folders no other one holds', () => {
    expect(outermost(['/home/u', '/home', '/root', '/home/u/x', '/srv/u', '/srv/u2'])).toEqual(['/home', '/root', '/srv/u', '/srv/u2']);
  });
});

describe('loginRefusal: what of a login file may be copied into a contained agent state', () => {
  const tokens = [
    ['claudeAiOauth', 'accessToken'],
    ['claudeAiOauth', 'refreshToken'],
  ];
  const placeholder = 'sk-ant-kwcap_0123456789abcdef0123456789abcdef';
  it('admits a login whose tokens are keyway placeholders, with scopes, a UUID, an email and numbers beside them', () => {
    const text = JSON.stringify({
      claudeAiOauth: { accessToken: placeholder, refreshToken: placeholder, expiresAt: 1_800_000_000_000, scopes: ['user:inference', 'user:profile'] },
      account: { uuid: '0f8fad5b-d9cb-469f-a165-70867728950e', email: 'person@example.test' },
      scope: 'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email',
    });
    expect(loginRefusal(text, tokens)).toBeUndefined();
  });
  it('refuses a real token at a token path, and a secret-shaped value anywhere else, naming where', () => {
    const real = JSON.stringify({ claudeAiOauth: { accessToken: 'sk-ant-oat01-realrealrealrealrealreal', refreshToken: placeholder } });
    expect(loginRefusal(real, tokens)).toBe('holds a real token (claudeAiOauth.accessToken)');
    const apiKey = JSON.stringify({ claudeAiOauth: { accessToken: placeholder }, OPENAI_API_KEY: 'sk-proj-abcdefghijklmnopqrstuvwxyz0123' });
    expect(loginRefusal(apiKey, tokens)).toBe('holds a value shaped like a secret (OPENAI_API_KEY)');
    const nested = JSON.stringify({ claudeAiOauth: { accessToken: placeholder }, extra: [{ token: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789' }] });
    expect(loginRefusal(nested, tokens)).toBe('holds a value shaped like a secret (extra.0.token)');
    expect(loginRefusal('not json', tokens)).toBe('is not JSON');
  });
});

describe('socketPaths: /proc/net/unix as the kernel writes it', () => {
  const head = 'Num       RefCount Protocol Flags    Type St Inode Path';
  const entry = (path: string) => `0000000000000000: 00000002 00000000 00010000 0001 01 12345${path === '' ? '' : ` ${path}`}`;
  it('keeps spaces, tabs and newlines in a path, and an abstract or unnamed entry apart', () => {
    const text = [
      head,
      entry('/srv/a  b.sock'),
      entry('/srv/tab\there.sock'),
      entry('/srv/new'),
      'line.sock',
      entry('@abstract'),
      entry(''),
      entry('rel.sock'),
      '',
    ].join('\n');
    expect(socketPaths(text)).toEqual(['/srv/a  b.sock', '/srv/tab\there.sock', '/srv/new\nline.sock', '@abstract', 'rel.sock']);
  });
});

describe('programRoots: a program folder in a home, never the home', () => {
  it('shows a link target of ~/bin as ~/bin and one of ~/.local/bin as ~/.local/bin, never the home or ~/.local', () => {
    const root = mkdtempSync(join(tmpdir(), 'keyway-program-roots-'));
    try {
      const home = join(root, 'home');
      for (const dir of ['bin', '.local/bin', 'PATH', '.nvm/versions/node/v22/bin', '.nvm/versions/node/v22/lib'])
        mkdirSync(join(home, dir), { recursive: true });
      for (const file of ['bin/tool', '.local/bin/other', '.nvm/versions/node/v22/bin/node']) writeFileSync(join(home, file), '');
      symlinkSync(join(home, 'bin/tool'), join(home, 'PATH/tool'));
      symlinkSync(join(home, '.local/bin/other'), join(home, 'PATH/other'));
      symlinkSync(join(home, '.nvm/versions/node/v22/bin/node'), join(home, 'PATH/node'));
      const roots = programRoots([join(home, 'PATH'), home], [home], [home]);
      expect(roots.sort()).toEqual([join(home, '.local/bin'), join(home, '.nvm/versions/node/v22'), join(home, 'PATH'), join(home, 'bin')].sort());
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("seedLogin: the person's login into a contained agent's kept state", () => {
  const placeholder = 'sk-ant-kwcap_0123456789abcdef0123456789abcdef';
  const login = (n: number) => JSON.stringify({ claudeAiOauth: { accessToken: `${placeholder}${n}`, refreshToken: placeholder, expiresAt: n } });

  it('copies it when it changed since the last copy, whatever the agent did to its copy; a copy it made a folder is said, not a crash', () => {
    const root = mkdtempSync(join(tmpdir(), 'keyway-seed-login-'));
    try {
      const home = join(root, 'home');
      const kept = [{ source: join(root, 'kept', '.claude'), target: join(home, '.claude'), kind: 'folder' as const }];
      mkdirSync(join(home, '.claude'), { recursive: true });
      mkdirSync(kept[0]!.source, { recursive: true });
      const copy = join(kept[0]!.source, '.credentials.json');
      writeFileSync(join(home, '.claude', '.credentials.json'), login(1));
      expect(seedLogin('claude-code', home, kept)).toEqual(["copied your claude-code login (keyway's placeholders) into the contained agent's state"]);
      expect(readFileSync(copy, 'utf8')).toBe(login(1));
      // The agent refreshed its copy, and set its time far ahead: yours unchanged, its copy stays.
      writeFileSync(copy, login(2));
      utimesSync(copy, 4_000_000_000, 4_000_000_000);
      expect(seedLogin('claude-code', home, kept)).toEqual([]);
      expect(readFileSync(copy, 'utf8')).toBe(login(2));
      // You logged in again: copied, whatever time its copy says.
      writeFileSync(join(home, '.claude', '.credentials.json'), login(3));
      expect(seedLogin('claude-code', home, kept)).toHaveLength(1);
      expect(readFileSync(copy, 'utf8')).toBe(login(3));
      // Its copy made a folder: said, nothing thrown, nothing left beside it.
      rmSync(copy);
      mkdirSync(copy);
      writeFileSync(join(home, '.claude', '.credentials.json'), login(4));
      expect(seedLogin('claude-code', home, kept)[0]).toContain('is not a file');
      expect(readdirSync(kept[0]!.source)).toEqual(['.credentials.json']);
      // A login with a real token is never copied.
      rmSync(copy, { recursive: true });
      writeFileSync(
        join(home, '.claude', '.credentials.json'),
        JSON.stringify({ claudeAiOauth: { accessToken: 'sk-ant-oat01-real', refreshToken: placeholder } }),
      );
      expect(seedLogin('claude-code', home, kept)[0]).toContain('holds a real token');
      expect(readdirSync(kept[0]!.source)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
