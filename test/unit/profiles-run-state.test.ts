// A profile's state on this machine (profiles/run/state.ts) and where profiles come from
// (load.ts): through every link, never keyway's files, a hidden path or a folder on PATH; made
// where missing, private, never over something there; a user's file found, overriding, or refused
// with its name. Real files in a temporary home.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findProfile, keyCovered, listProfiles, makeProfileState, profileRunPlan, resolveState } from '../../src/profiles/run/index.ts';
import type { LoadedProfile } from '../../src/profiles/run/load.ts';
import { parseProfile } from '../../src/profiles/run/load.ts';
import { parseConfig } from '../../src/config/load.ts';
import { keywayFiles } from '../../src/contain/keyway-files.ts';
import { isWithin } from '../../src/contain/sandbox.ts';
import { stringify } from 'yaml';
import { profilesDir } from '../../src/profiles/run/load.ts';

let root: string;
let home: string;
let keywayHome: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyway-profiles-'));
  home = join(root, 'home');
  keywayHome = join(home, '.keyway');
  mkdirSync(keywayHome, { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function profile(yaml: string): LoadedProfile {
  return { name: 'mine', profile: parseProfile(`command: agent\n${yaml}`, 'test'), source: { kind: 'builtin' } };
}

function resolve(yaml: string, opts: { path?: string; config?: object } = {}) {
  return resolveState(profile(yaml), {
    config: parseConfig(opts.config ?? {}, keywayHome),
    configFile: undefined,
    home,
    pathVariable: opts.path ?? '/usr/bin:/bin',
  });
}

const state = (path: string, kind = 'folder') => `state: [{ path: "${path}", kind: ${kind} }]`;

describe("a profile's state, here", () => {
  it('resolves each path in the home, and says what is missing', () => {
    mkdirSync(join(home, '.there'));
    const found = resolve(`state: [{ path: ~/.there, kind: folder }, { path: ~/.new.json, kind: file }, { path: ~/.newdir, kind: folder }]`);
    expect(found.map((s) => [s.path, s.kind, s.missing?.kind])).toEqual([
      [join(home, '.there'), 'folder', undefined],
      [join(home, '.new.json'), 'file', 'file'],
      [join(home, '.newdir'), 'folder', 'folder'],
    ]);
  });

  it('makes what is missing: a folder 0700, a file 0600 (empty, or {} for .json), in the kind the profile says', () => {
    const found = resolve(
      `state: [{ path: ~/.a, kind: folder }, { path: ~/.a.json, kind: file }, { path: ~/.noext, kind: file }, { path: ~/.dotted.d, kind: folder }]`,
    );
    const lines = makeProfileState({ state: found } as never);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toContain('for the profile');
    expect(statSync(join(home, '.a')).isDirectory()).toBe(true);
    expect(statSync(join(home, '.a')).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(home, '.a.json'), 'utf8')).toBe('{}\n');
    expect(statSync(join(home, '.a.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.noext')).isFile()).toBe(true);
    expect(readFileSync(join(home, '.noext'), 'utf8')).toBe('');
    expect(statSync(join(home, '.dotted.d')).isDirectory()).toBe(true);
  });

  it('never makes over something made meanwhile', () => {
    const found = resolve(state('~/.a.json', 'file'));
    writeFileSync(join(home, '.a.json'), 'theirs');
    expect(() => makeProfileState({ state: found } as never)).toThrow(/could not make .*EEXIST/);
    expect(readFileSync(join(home, '.a.json'), 'utf8')).toBe('theirs');
  });

  it('refuses a path whose folder is missing (one level made, never a chain)', () => {
    expect(() => resolve(state('~/.config/agent'))).toThrow(/profile mine: state ~\/.config\/agent: no such file or folder, nor its folder/);
  });

  it('refuses a path of the other kind than the profile says', () => {
    writeFileSync(join(home, '.agent'), '');
    expect(() => resolve(state('~/.agent'))).toThrow(/state ~\/.agent: is a file; the profile says folder/);
    mkdirSync(join(home, '.agent.json'));
    expect(() => resolve(state('~/.agent.json', 'file'))).toThrow(/is a folder; the profile says file/);
  });

  it('refuses a link that leads into a hidden path, however it is named', () => {
    mkdirSync(join(home, '.ssh'));
    symlinkSync(join(home, '.ssh'), join(home, '.agent'));
    expect(() => resolve(state('~/.agent'))).toThrow(/state ~\/.agent: leads to .*\.ssh, which is inside .*\.ssh, hidden from contained commands/);
    // A link in the middle of the path, to a folder of the hidden one.
    mkdirSync(join(home, '.aws', 'sub'), { recursive: true });
    symlinkSync(join(home, '.aws'), join(home, '.tool'));
    expect(() => resolve(state('~/.tool/sub'))).toThrow(/hidden from contained commands/);
  });

  it("refuses a link to keyway's home, and a state folder holding it", () => {
    symlinkSync(keywayHome, join(home, '.agent'));
    expect(() => resolve(state('~/.agent'))).toThrow(/leads to .*\.keyway, which is inside .*\.keyway, one of keyway's own files/);
    rmSync(join(home, '.agent'));
    // keyway's home moved inside the agent's folder (KEYWAY_HOME=~/.agent/keyway).
    const inside = join(home, '.agent', 'keyway');
    mkdirSync(inside, { recursive: true });
    expect(() => resolveState(profile(state('~/.agent')), { config: parseConfig({}, inside), configFile: undefined, home, pathVariable: '/usr/bin' })).toThrow(
      /holds .*\.agent\/keyway, one of keyway's own files/,
    );
  });

  it("refuses contain.hide's paths as the defaults, and a link to the home itself", () => {
    mkdirSync(join(home, '.agent', 'secrets'), { recursive: true });
    expect(() => resolve(state('~/.agent/secrets'), { config: { contain: { hide: ['~/.agent/secrets'] } } })).toThrow(/inside .*secrets, hidden/);
    // Holding a hidden path is fine: it stays hidden inside the writable folder.
    expect(resolve(state('~/.agent'), { config: { contain: { hide: ['~/.agent/secrets'] } } })).toHaveLength(1);
    symlinkSync(home, join(home, '.loop'));
    expect(() => resolve(state('~/.loop'))).toThrow(/leads to the home folder itself/);
  });

  it('refuses a path on PATH or in a folder on PATH; a folder that holds one is judged by the overlay', () => {
    mkdirSync(join(home, '.agent', 'bin'), { recursive: true });
    expect(() => resolve(state('~/.agent'), { path: `${join(home, '.agent')}:/usr/bin` })).toThrow(/inside .*\.agent, a folder on PATH/);
    expect(() => resolve(state('~/.agent/bin/tool', 'file'), { path: `${join(home, '.agent', 'bin')}:/usr/bin` })).toThrow(/a folder on PATH/);
    expect(resolve(state('~/.agent'), { path: `${join(home, '.agent', 'bin')}:/usr/bin` })).toHaveLength(1);
    // ~/bin counts as on PATH (Debian's ~/.profile puts it there once it exists).
    mkdirSync(join(home, 'bin'));
    symlinkSync(join(home, 'bin'), join(home, '.agentbin'));
    expect(() => resolve(state('~/.agentbin'))).toThrow(/a folder on PATH/);
  });

  it('refuses a path in a .git folder, a link leading nowhere, and a home of /', () => {
    mkdirSync(join(home, 'repo', '.git'), { recursive: true });
    symlinkSync(join(home, 'repo', '.git'), join(home, '.gitlink'));
    expect(() => resolve(state('~/.gitlink'))).toThrow(/a \.git folder/);
    symlinkSync(join(home, 'nowhere'), join(home, '.dangling'));
    expect(() => resolve(state('~/.dangling'))).toThrow(/a link to something that does not exist/);
    expect(() => resolveState(profile(state('~/.agent')), { config: parseConfig({}, keywayHome), configFile: undefined, home: '/', pathVariable: '' })).toThrow(
      /a home of its own/,
    );
  });
});

describe('where profiles come from', () => {
  const dir = () => join(keywayHome, 'profiles');

  it("lists the built-ins, and a user's file beside them", () => {
    mkdirSync(dir());
    writeFileSync(join(dir(), 'mine.yaml'), 'description: my agent\ncommand: mine\n');
    const { profiles, problems } = listProfiles(keywayHome);
    expect(problems).toEqual([]);
    expect(profiles.map((p) => p.name)).toEqual(['claude-code', 'codex', 'gemini-cli', 'mine']);
    expect(findProfile(keywayHome, 'mine').source).toEqual({ kind: 'file', path: join(dir(), 'mine.yaml'), overrides: false });
  });

  it('a file named as a built-in takes its place, and says so', () => {
    mkdirSync(dir());
    writeFileSync(join(dir(), 'codex.yaml'), 'command: /opt/codex/bin/codex\n');
    const found = findProfile(keywayHome, 'codex');
    expect(found.profile.command).toBe('/opt/codex/bin/codex');
    expect(found.source).toEqual({ kind: 'file', path: join(dir(), 'codex.yaml'), overrides: true });
    const plan = profileRunPlan('codex', { config: parseConfig({}, keywayHome), configFile: undefined, env: { HOME: home, PATH: '/usr/bin' }, contain: false });
    expect(plan.notes).toEqual([`profile codex: from ${join(dir(), 'codex.yaml')}, in place of the built-in`]);
  });

  it('a bad file is one line naming the file and the key; list names it and goes on', () => {
    mkdirSync(dir());
    writeFileSync(join(dir(), 'bad.yaml'), 'command: x\nstate: [{ path: ~/.ssh, kind: folder }]\n');
    expect(() => findProfile(keywayHome, 'bad')).toThrow(`${join(dir(), 'bad.yaml')}: state.0.path: is ~/.ssh, a credential path`);
    const { profiles, problems } = listProfiles(keywayHome);
    expect(profiles.map((p) => p.name)).not.toContain('bad');
    expect(problems).toEqual([expect.stringContaining(`${join(dir(), 'bad.yaml')}: state.0.path`)]);
  });

  it('refuses a FIFO without waiting on it, a file too large, and a file name that is not a name', () => {
    mkdirSync(dir());
    execFileSync('mkfifo', [join(dir(), 'pipe.yaml')]);
    expect(() => findProfile(keywayHome, 'pipe')).toThrow(/pipe\.yaml: not a regular file/);
    writeFileSync(join(dir(), 'big.yaml'), `command: x\ndescription: "${'a'.repeat(70_000)}"\n`);
    expect(() => findProfile(keywayHome, 'big')).toThrow(/bytes; a profile is at most 65536/);
    writeFileSync(join(dir(), 'Bad_Name.yaml'), 'command: x\n');
    expect(listProfiles(keywayHome).problems).toContainEqual(expect.stringContaining("Bad_Name.yaml: not a profile's name"));
  });

  it("a user's profiles live in keyway's home, which a contained command never sees (so an agent cannot write its own)", () => {
    const config = parseConfig({}, keywayHome);
    expect(keywayFiles(config, undefined).some((hidden) => isWithin(profilesDir(config.home), hidden))).toBe(true);
  });

  it('what show prints (YAML) is a file of your own that parses to the same profile', () => {
    mkdirSync(dir());
    for (const name of ['claude-code', 'codex', 'gemini-cli']) {
      const builtin = findProfile(keywayHome, name);
      writeFileSync(join(dir(), `copy-${name}.yaml`), `# profile ${name}: built in\n${stringify(builtin.profile, { lineWidth: 0 })}`);
      expect(findProfile(keywayHome, `copy-${name}`).profile).toEqual(builtin.profile);
    }
  });

  it('an unknown name says which there are and where a file of your own goes', () => {
    expect(() => findProfile(keywayHome, 'nope')).toThrow(
      `no profile "nope" (profiles: claude-code, codex, gemini-cli; a profile of your own is ${join(dir(), 'nope.yaml')})`,
    );
    expect(() => findProfile(keywayHome, '../etc/passwd')).toThrow(/a profile's name/);
  });
});

describe('key placeholders', () => {
  it("only where a grant with a static key (api_key, bearer) covers the key's host", () => {
    const grants = [
      { type: 'api_key', domains: ['api.example.com'] },
      { type: 'login_capture', domains: ['login.example.com'] },
      { type: 'bearer', domains: ['*.example.org'] },
      { type: 'api_key', domains: ['odd.example.net:8443'] },
    ];
    expect(keyCovered('api.example.com', grants)).toBe(true);
    expect(keyCovered('login.example.com', grants)).toBe(false);
    expect(keyCovered('api.example.org', grants)).toBe(true);
    expect(keyCovered('example.org', grants)).toBe(false);
    expect(keyCovered('odd.example.net', grants)).toBe(false);
    expect(keyCovered('odd.example.net:8443', grants)).toBe(true);
    expect(keyCovered('other.example.com', grants)).toBe(false);
  });
});
