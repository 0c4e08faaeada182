// What a contained command wrote that reaches the host at its exit, and what is kept aside (issue
// 58): the judge admits git's own data in a repository that was there, the project's files, and
// nothing that git, a shell or PATH would run later. Each case nobody listed is tried too.
import { describe, expect, it } from 'vitest';
import { type ChangeKind, judgeChange, type JudgeContext } from '../../src/contain/change-judge.ts';

const folders = new Set(['/home/u/project/.git', '/home/u/.git']);
// What the command's view holds at its exit, for the bare-repository rule.
const project: JudgeContext = {
  root: '/home/u/project',
  homes: ['/home/u'],
  pathFolders: ['/usr/local/bin', '/home/u/project/tools/bin'],
  wasFolder: (path) => folders.has(path),
  isThere: (path) => there.has(path),
  wasGitFolder: (path) => gitFolders.has(path),
  relativePathEntries: ['node_modules/.bin'],
};
const gitFolders = new Set(['/home/u/project/srv.git', '/home/u/project/meta/sub']);
const there = new Set(['/home/u/project/bare/HEAD']);
const judge = (path: string, kind: ChangeKind = 'file', context = project) => judgeChange({ path, kind }, context);
const applied = (path: string, kind: ChangeKind = 'file', context = project) => judge(path, kind, context).apply;

describe('judgeChange', () => {
  it("admits the project's files, folders, links and deletions", () => {
    for (const path of ['/home/u/project/src/a.ts', '/home/u/project/Makefile', '/home/u/project/package.json', '/home/u/project/.gitignore'])
      expect(applied(path), path).toBe(true);
    expect(applied('/home/u/project/src', 'dir')).toBe(true);
    expect(judgeChange({ path: '/home/u/project/link', kind: 'symlink', target: 'src/a.ts' }, project).apply).toBe(true);
    expect(applied('/home/u/project/old.txt', 'deleted')).toBe(true);
  });

  it('admits what git add and git commit write in the repository that was there', () => {
    for (const inside of [
      'index',
      'HEAD',
      'ORIG_HEAD',
      'COMMIT_EDITMSG',
      'packed-refs',
      'objects/ab',
      `objects/ab/${'c'.repeat(38)}`,
      `objects/pack/pack-${'d'.repeat(40)}.pack`,
      'refs/heads/main',
      'refs/heads/feature/x',
      'logs/HEAD',
      'logs/refs/heads/main',
    ])
      expect(applied(`/home/u/project/.git/${inside}`), inside).toBe(true);
    expect(applied('/home/u/project/.git', 'dir')).toBe(true);
    expect(applied('/home/u/project/.git/refs/heads/old', 'deleted')).toBe(true);
  });

  it('keeps aside everything else git reads in .git, a lock, a link, and the .git itself replaced', () => {
    for (const inside of [
      'config',
      'config.worktree',
      'commondir',
      'gitdir',
      'hooks/pre-commit',
      'hooks',
      'info/attributes',
      'info/exclude',
      'objects/info/alternates',
      'worktrees/x/config',
      'modules/sub/config',
      'rebase-merge/git-rebase-todo',
      'index.lock',
      'refs/heads/main.lock',
      'shallow',
      'fsmonitor--daemon.ipc',
      'something-git-adds-next-year',
    ])
      expect(applied(`/home/u/project/.git/${inside}`), inside).toBe(false);
    expect(applied('/home/u/project/.git/refs/heads/x', 'symlink')).toBe(false);
    expect(applied('/home/u/project/.git', 'file')).toBe(false);
    expect(applied('/home/u/project/.git', 'deleted')).toBe(false);
    expect(applied('/home/u/project/.git/config', 'deleted')).toBe(false);
  });

  it('keeps aside a .git the command made or moved, at any depth, in any case, whatever is in it', () => {
    expect(judge('/home/u/project/sub/.git', 'dir')).toMatchObject({ apply: false, why: expect.stringMatching(/made or moved/) });
    expect(applied('/home/u/project/sub/.git', 'file')).toBe(false); // gitdir: /elsewhere
    expect(applied('/home/u/project/sub/.git/objects/ab', 'dir')).toBe(false);
    expect(applied('/home/u/project/a/b/c/.GIT/config')).toBe(false);
    expect(applied('/home/u/project/.Git/config')).toBe(false);
    expect(applied('/home/u/project/sub/.git', 'symlink')).toBe(false);
  });

  it('keeps aside anything in a folder on PATH, the folder itself, and ~/bin', () => {
    expect(applied('/home/u/project/tools/bin/git')).toBe(false);
    expect(applied('/home/u/project/tools/bin', 'dir')).toBe(false);
    const home = { ...project, root: '/home/u' };
    expect(applied('/home/u/bin/git', 'file', home)).toBe(false);
    expect(applied('/home/u/bin', 'dir', home)).toBe(false);
  });

  it('with the home as the working folder: every hidden name at its top is kept aside, listed or not', () => {
    const home = { ...project, root: '/home/u' };
    for (const path of [
      '.bash_profile',
      '.bash_login',
      '.bash_logout',
      '.zshenv',
      '.profile',
      '.config/git/config',
      '.local/bin/git',
      '.gitconfig',
      '.npmrc',
      '.newshell-rc',
      '.config',
    ])
      expect(applied(`/home/u/${path}`, 'file', home), path).toBe(false);
    expect(applied('/home/u/notes.txt', 'file', home)).toBe(true);
    expect(applied('/home/u/project/src/a.ts', 'file', home)).toBe(true);
    // The home's own repository (a dotfiles repo) is a repository like another.
    expect(applied('/home/u/.git/config', 'file', home)).toBe(false);
  });

  it('admits what is inside a hidden folder the person named with --allow-write', () => {
    const state = { ...project, root: '/home/u/.claude' };
    expect(applied('/home/u/.claude/settings.json', 'file', state)).toBe(true);
    expect(applied('/home/u/.claude/projects/x.jsonl', 'file', state)).toBe(true);
    expect(applied('/home/u/.claude/.git/config', 'file', state)).toBe(false);
  });

  it('never admits a FIFO, socket or device', () => {
    expect(judge('/home/u/project/fifo', 'other')).toEqual({ apply: false, why: 'not a file, folder or link' });
  });

  it('keeps aside what would make a folder a bare git repository: a HEAD outside .git, objects/ or refs/ beside a HEAD', () => {
    expect(judge('/home/u/project/evil/HEAD')).toMatchObject({ apply: false, why: expect.stringMatching(/git repository/) });
    expect(applied('/home/u/project/HEAD')).toBe(false);
    expect(applied('/home/u/project/bare/objects', 'dir')).toBe(false);
    expect(applied('/home/u/project/bare/refs', 'dir')).toBe(false);
    // Without a HEAD beside them, objects/ and refs/ are a project's folders like any other.
    expect(applied('/home/u/project/src/refs', 'dir')).toBe(true);
    expect(applied('/home/u/project/src/objects', 'dir')).toBe(true);
    expect(applied('/home/u/project/HEAD', 'deleted')).toBe(true);
  });

  it("keeps aside everything in another version control system's folder, which runs its repository's hooks", () => {
    for (const path of [
      '.hg/hgrc',
      'sub/.hg/hgrc',
      '.jj/repo/config.toml',
      '.svn/wc.db',
      '.bzr/branch/branch.conf',
      '_darcs/prefs/defaults',
      '.pijul/config',
      '.fslckout',
    ])
      expect(applied(`/home/u/project/${path}`), path).toBe(false);
  });

  it('treats a repository the host had under another name (a bare one, a --separate-git-dir) as it treats .git', () => {
    expect(applied('/home/u/project/srv.git/hooks/post-update')).toBe(false);
    expect(applied('/home/u/project/meta/sub/config')).toBe(false);
    expect(applied(`/home/u/project/srv.git/objects/ab/${'c'.repeat(38)}`)).toBe(true);
    expect(applied('/home/u/project/meta/sub/refs/heads/main')).toBe(true);
  });

  it('keeps what holds a repository together from deletion: HEAD, the index, objects/, refs/, logs/', () => {
    for (const inside of ['HEAD', 'index', 'objects', 'refs', 'logs', 'refs/heads', 'packed-refs'])
      expect(applied(`/home/u/project/.git/${inside}`, 'deleted'), inside).toBe(false);
    expect(applied('/home/u/project/.git/refs/heads/topic', 'deleted')).toBe(true);
  });

  it('keeps aside a program in a folder PATH names relative to where one stands (node_modules/.bin), at any depth', () => {
    expect(applied('/home/u/project/node_modules/.bin/git')).toBe(false);
    expect(applied('/home/u/project/web/node_modules/.bin/ls')).toBe(false);
    expect(applied('/home/u/project/node_modules/x/index.js')).toBe(true);
    expect(applied('/home/u/project/src/a.ts', 'file', { ...project, relativePathEntries: ['.'] })).toBe(false);
  });

  it('lands a link only where it is relative and stays inside its folder: never one leading out (into kept-aside changes, say)', () => {
    const link = (path: string, target: string) => judgeChange({ path, kind: 'symlink', target }, project).apply;
    expect(link('/home/u/project/docs', '../project/src')).toBe(true);
    expect(link('/home/u/project/a/b', '../c')).toBe(true);
    expect(link('/home/u/project/docs', '/var/tmp/keyway-contain-Zyt470/0/upper/evil')).toBe(false);
    expect(link('/home/u/project/docs', '../../other')).toBe(false);
    expect(link('/home/u/project/a/b', '../../../x')).toBe(false);
    expect(judgeChange({ path: '/home/u/project/docs', kind: 'symlink' }, project).apply).toBe(false);
    // objects/ as a link beside a HEAD makes a repository too.
    expect(judgeChange({ path: '/home/u/project/bare/objects', kind: 'symlink', target: '../x' }, project).apply).toBe(false);
  });

  it('keeps aside the settings a tool reads on its own when a folder is opened or entered, at any depth, named or made in any way', () => {
    for (const path of [
      '.claude/settings.json',
      '.claude/settings.local.json',
      '.mcp.json',
      '.gemini/settings.json',
      '.codex/config.toml',
      '.vscode/tasks.json',
      '.cursor/mcp.json',
      '.idea/workspace.xml',
      '.envrc',
      '.env',
      '.mise.toml',
      '.tool-versions',
      '.nvmrc',
      '.npmrc',
      '.gitmodules',
      '.github/workflows/ci.yml',
      '.prettierrc',
      '.some-tool-of-next-year/config',
      // Hidden means starting with a dot, in any case, and `..foo` too.
      '.Claude/settings.json',
      '..foo',
      '..foo/a.ts',
      // In the middle: a person may cd into src and run a tool there.
      'src/.claude/settings.json',
      'sub/.envrc',
      'a/b/c/.vscode/tasks.json',
      // An inert name does not carry what is below a refused one.
      '.claude/.gitignore',
    ])
      expect(judge(`/home/u/project/${path}`), path).toMatchObject({ apply: false, why: expect.stringMatching(/hidden file a tool may read/) });
    expect(judge('/home/u/project/.claude/settings.json')).toEqual({
      apply: false,
      why: 'a hidden file a tool may read on its own when you open or enter the folder (.claude): kept for review',
    });
    // A folder made or renamed to such a name, a link by such a name (wherever it leads), a deletion.
    expect(applied('/home/u/project/.vscode', 'dir')).toBe(false);
    expect(judgeChange({ path: '/home/u/project/.envrc', kind: 'symlink', target: 'docs/env.sh' }, project).apply).toBe(false);
    expect(judgeChange({ path: '/home/u/project/.claude', kind: 'symlink', target: 'settings' }, project).apply).toBe(false);
    expect(applied('/home/u/project/.envrc', 'deleted')).toBe(false);
    expect(applied('/home/u/project/.claude/settings.json', 'deleted')).toBe(false);
    // No repository's data lands through a refused folder.
    expect(applied(`/home/u/project/.claude/.git/objects/ab/${'c'.repeat(38)}`, 'file', { ...project, wasFolder: () => true })).toBe(false);
  });

  it("keeps aside mise's plain names, which it reads on entering a folder and whose hooks it runs", () => {
    for (const path of ['mise.toml', 'mise.local.toml', 'mise.dev.toml', 'mise.dev.local.toml', 'sub/mise.toml', 'mise/config.toml', 'Mise.toml'])
      expect(judge(`/home/u/project/${path}`), path).toMatchObject({ apply: false, why: expect.stringMatching(/^mise reads/) });
    expect(applied('/home/u/project/mise', 'dir')).toBe(false);
    expect(judgeChange({ path: '/home/u/project/mise', kind: 'symlink', target: 'conf' }, project).apply).toBe(false);
    expect(applied('/home/u/project/src/promise.toml')).toBe(true);
    expect(applied('/home/u/project/src/mise.ts')).toBe(true);
  });

  it('admits the inert hidden names, at any depth, made, changed or deleted, and what merely looks hidden', () => {
    for (const path of [
      '.gitignore',
      'src/.gitignore',
      '.gitattributes',
      '.gitkeep',
      'logs/.keep',
      '.editorconfig',
      '.dockerignore',
      '.npmignore',
      '.prettierignore',
      '.eslintignore',
      // Look-alikes are not hidden (U+2024, U+FF0E): no tool reads them as its settings.
      '\u2024claude/settings.json',
      '\uff0eenvrc',
      'src/main.ts',
      'docs.claude/x.md',
    ])
      expect(applied(`/home/u/project/${path}`), path).toBe(true);
    expect(applied('/home/u/project/.gitignore', 'deleted')).toBe(true);
    expect(judgeChange({ path: '/home/u/project/.gitkeep', kind: 'symlink', target: 'src/a.ts' }, project).apply).toBe(true);
  });

  it('lands git add and git commit in a repository that was there, whatever the hidden rule says of other names', () => {
    expect(applied(`/home/u/project/.git/objects/ab/${'c'.repeat(38)}`)).toBe(true);
    expect(applied('/home/u/project/.git/refs/heads/main')).toBe(true);
    expect(applied('/home/u/project/.git/index')).toBe(true);
    expect(applied('/home/u/project/.git/config')).toBe(false);
  });

  it('admits hidden names below node_modules (npm writes them; nobody enters a package), not .bin where PATH names it', () => {
    for (const path of [
      'node_modules/.package-lock.json',
      'node_modules/.cache/x',
      'node_modules/pkg/.eslintrc',
      'node_modules/@s/pkg/.github/workflows/ci.yml',
      'web/node_modules/.vite/deps/a.js',
    ])
      expect(applied(`/home/u/project/${path}`), path).toBe(true);
    expect(applied('/home/u/project/node_modules/.bin/tsc')).toBe(false);
    // What comes before node_modules is judged as ever.
    expect(applied('/home/u/project/.claude/node_modules/x')).toBe(false);
    expect(applied('/home/u/project/Node_Modules/.envrc')).toBe(false);
  });

  it("applies the rule in every writable folder, but not in a hidden folder of a home the person named (an application's state)", () => {
    const other = { ...project, root: '/srv/data' };
    expect(applied('/srv/data/.envrc', 'file', other)).toBe(false);
    expect(applied('/srv/data/.claude/settings.json', 'file', other)).toBe(false);
    expect(applied('/srv/data/notes.md', 'file', other)).toBe(true);
    const home = { ...project, root: '/home/u' };
    expect(applied('/home/u/project/.envrc', 'file', home)).toBe(false);
    for (const [root, path] of [
      ['/home/u/.claude', '.claude.json'],
      ['/home/u/.claude', '.credentials.json'],
      ['/home/u/.claude', 'projects/x/.claude/settings.json'],
      ['/home/u/.config/gh', '.hosts.yml.tmp'],
    ] as const)
      expect(applied(`${root}/${path}`, 'file', { ...project, root }), path).toBe(true);
    // Unless it is the working folder: a project kept in a hidden folder is a project.
    const dotfiles = { ...project, root: '/home/u/.dotfiles', workdir: '/home/u/.dotfiles' };
    expect(applied('/home/u/.dotfiles/.envrc', 'file', dotfiles)).toBe(false);
    expect(applied('/home/u/.dotfiles/.envrc', 'file', { ...dotfiles, workdir: '/home/u/.dotfiles/sub' })).toBe(false);
    expect(applied('/home/u/.claude/.claude.json', 'file', { ...project, root: '/home/u/.claude', workdir: '/home/u/project' })).toBe(true);
  });

  it('takes a name starting with two dots for a name inside its folder, not for the way out', () => {
    expect(applied('/home/u/project/tools/bin/..evil')).toBe(false);
    expect(applied('/home/u/project/..x/.git/config', 'file', { ...project, wasFolder: () => true })).toBe(false);
    expect(applied('/home/u/project/..x/.hg/hgrc')).toBe(false);
    expect(judgeChange({ path: '/home/u/project/link', kind: 'symlink', target: '..x' }, project).apply).toBe(true);
  });
});

describe('judgeChange: what an outside test found in the first cut of issue 84', () => {
  it("keeps aside a coding agent's instructions file, wherever it is, and lets a file merely named like one land", () => {
    for (const name of [
      'CLAUDE.md',
      'claude.local.md',
      'AGENTS.md',
      'AGENTS.override.md',
      'AGENT.md',
      'GEMINI.md',
      'QWEN.md',
      'CRUSH.md',
      'opencode.json',
      'crush.json',
      'proj.code-workspace',
      'sub/CLAUDE.md',
    ])
      expect(judge(`/home/u/project/${name}`), name).toMatchObject({ apply: false, why: expect.stringContaining('a coding agent or editor reads') });
    for (const name of ['docs/CLAUDE.md.bak', 'README.md', 'CLAUDE.md/notes.txt']) expect(applied(`/home/u/project/${name}`), name).toBe(true);
  });

  it('keeps aside what direnv loads beside an .envrc the host has, and lets the same names land where there is none', () => {
    const withEnvrc: JudgeContext = { ...project, isThere: (path) => path === '/home/u/project/.envrc' };
    for (const name of ['flake.nix', 'flake.lock', 'shell.nix', 'devenv.nix', 'devbox.json'])
      expect(judge(`/home/u/project/${name}`, 'file', withEnvrc)).toMatchObject({ apply: false, why: expect.stringContaining('direnv') });
    // `use flake ./nix`: an .envrc above reaches down.
    expect(applied('/home/u/project/nix/flake.nix', 'file', withEnvrc)).toBe(false);
    expect(applied('/home/u/project/flake.nix')).toBe(true);
    expect(applied('/home/u/project/nix/flake.nix')).toBe(true);
  });

  it("admits npm's own names at the top of node_modules and a package's dotfiles, never another hidden name at its top", () => {
    for (const name of ['node_modules/.package-lock.json', 'node_modules/.cache/x', 'node_modules/pkg/.eslintrc', 'node_modules/@scope/pkg/.npmignore'])
      expect(applied(`/home/u/project/${name}`), name).toBe(true);
    for (const name of ['node_modules/.claude/settings.json', 'node_modules/.envrc', 'node_modules/.vscode/tasks.json'])
      expect(applied(`/home/u/project/${name}`), name).toBe(false);
  });

  it('keeps a folder deleted whole when it held a hidden name, or more than can be looked through; admits one that held plain files', () => {
    const held: Record<string, string[] | undefined> = {
      '/home/u/project/sub': ['/home/u/project/sub/a.ts', '/home/u/project/sub/.claude', '/home/u/project/sub/.claude/settings.json'],
      '/home/u/project/plain': ['/home/u/project/plain/a.ts', '/home/u/project/plain/.gitignore'],
      '/home/u/project/huge': undefined,
    };
    const context: JudgeContext = { ...project, below: (path) => (path in held ? held[path] : []) };
    expect(judge('/home/u/project/sub', 'deleted', context)).toMatchObject({ apply: false, why: expect.stringContaining('it holds .claude') });
    expect(applied('/home/u/project/plain', 'deleted', context)).toBe(true);
    expect(judge('/home/u/project/huge', 'deleted', context)).toMatchObject({ apply: false, why: expect.stringContaining('too large') });
  });

  it("keeps aside what a link of the home's start-up names leads to in the working folder (a dotfiles checkout)", () => {
    const dotfiles: JudgeContext = {
      ...project,
      root: '/home/u/dotfiles',
      workdir: '/home/u/dotfiles',
      homeLinked: [
        { link: '/home/u/.bashrc', target: '/home/u/dotfiles/bashrc' },
        { link: '/home/u/.claude', target: '/home/u/dotfiles/claude' },
      ],
    };
    expect(judge('/home/u/dotfiles/bashrc', 'file', dotfiles)).toMatchObject({
      apply: false,
      why: '/home/u/.bashrc in your home leads here: what reads it at start would read this',
    });
    expect(applied('/home/u/dotfiles/claude/settings.json', 'file', dotfiles)).toBe(false);
    expect(applied('/home/u/dotfiles/claude', 'deleted', dotfiles)).toBe(false);
    expect(applied('/home/u/dotfiles/README.md', 'file', dotfiles)).toBe(true);
  });
});
