// What a contained command sees of the homes (issue 84), its pure parts: bwrap's arguments for an
// absent home with a throwaway HOME and what the run names bound back, a socket nobody named, the
// place a working folder may be, and which login file may be copied into a profile's kept state.
import { describe, expect, it } from 'vitest';
import { loginRefusal } from '../../src/agents/profiles/contained-state.ts';
import { outermost } from '../../src/contain/home-view.ts';
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

function mounts(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--bind' || a === '--ro-bind' || a === '--ro-bind-try') out.push(`${a} ${args[++i]} ${args[++i]}`);
    else if (a === '--tmpfs' || a === '--remount-ro' || a === '--chdir') out.push(`${a} ${args[++i]}`);
  }
  return out;
}

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
