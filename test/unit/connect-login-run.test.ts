// The login run of `keyway connect AGENT --login` (profiles/connect/login-run.ts, issue 86): the
// variables it runs with (the profile's switches, its state moved into a folder of its own), and the
// one file taken from that folder into the home: only with keyway's placeholders in it, merged with
// what the file there held, a file there that is no JSON kept aside, nothing written otherwise.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturedLogin } from '../../src/profiles/connect/login-grant.ts';
import { dropLoginFolder, keepLoginFile, loginEnvironment, makeLoginFolder, runsInOwnFolder } from '../../src/profiles/connect/login-run.ts';
import { AGENT_TARGETS } from '../../src/profiles/connect/targets.ts';
import { makePlaceholder } from '../../src/capture/core/placeholder.ts';
import { BUILTIN_PROFILES } from '../../src/profiles/run/builtin/index.ts';

const claude = AGENT_TARGETS['claude-code'];
const claudeLogin = capturedLogin(claude);
/** The built-in profile's `env`, as `keyway connect` hands it to the login run. */
const profileEnv = (agent: string) => (BUILTIN_PROFILES[agent] as { env?: Record<string, string> } | undefined)?.env ?? {};
const REAL = 'sk-ant-oat01-kw-canary-real-token-7f3a9c1e5b2d';

describe('the login run’s variables', () => {
  it("Claude Code's: the profile's four switches, CLAUDE_CONFIG_DIR on the login's own folder, not on ~/.claude", () => {
    expect(runsInOwnFolder(claudeLogin)).toBe(true);
    expect(loginEnvironment(profileEnv('claude-code'), claudeLogin, '/tmp/keyway-login-x')).toEqual({
      CLAUDE_CONFIG_DIR: '/tmp/keyway-login-x',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
    });
  });

  it("the others': their profile's switches, their state where they keep it", () => {
    const gemini = AGENT_TARGETS['gemini-cli'];
    expect(runsInOwnFolder(capturedLogin(gemini))).toBe(false);
    expect(loginEnvironment(profileEnv('gemini-cli'), capturedLogin(gemini), undefined)).toEqual({ GEMINI_TELEMETRY_ENABLED: 'false' });
    expect(loginEnvironment(profileEnv('codex'), capturedLogin(AGENT_TARGETS.codex), undefined)).toEqual({});
  });
});

describe('the login file taken from the login’s folder', () => {
  let home: string;
  let folder: string;
  const env = () => ({ HOME: home });
  const own = () => join(home, '.claude', '.credentials.json');
  const placeholders = () => ({ accessToken: makePlaceholder(REAL).text, refreshToken: makePlaceholder(`${REAL}-refresh`).text, expiresAt: 1 });
  const wrote = (json: unknown) => writeFileSync(join(folder, '.credentials.json'), JSON.stringify(json), { mode: 0o600 });

  beforeEach(async () => {
    home = mkdtempSync(join(tmpdir(), 'keyway-login-run-home-'));
    folder = await makeLoginFolder();
  });
  afterEach(async () => {
    await dropLoginFolder(folder);
    rmSync(home, { recursive: true, force: true });
  });

  it('is private while it lives, and gone after', async () => {
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    writeFileSync(join(folder, '.claude.json'), '{}');
    await dropLoginFolder(folder);
    expect(() => statSync(folder)).toThrow();
  });

  it('goes into a home that had none: ~/.claude made 0700, the file 0600, byte for byte', async () => {
    const fresh = { claudeAiOauth: placeholders() };
    wrote(fresh);
    expect(await keepLoginFile(folder, claudeLogin.file, env())).toEqual({ kept: true, path: own() });
    expect(readFileSync(own(), 'utf8')).toBe(JSON.stringify(fresh));
    expect(statSync(own()).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.claude')).mode & 0o777).toBe(0o700);
    expect(readdirSync(home, { recursive: true })).toEqual(['.claude', join('.claude', '.credentials.json')]);
  });

  it('goes where CLAUDE_CONFIG_DIR says, when the user sets it', async () => {
    wrote({ claudeAiOauth: placeholders() });
    const moved = join(home, 'elsewhere');
    expect(await keepLoginFile(folder, claudeLogin.file, { HOME: home, CLAUDE_CONFIG_DIR: moved })).toMatchObject({
      kept: true,
      path: join(moved, '.credentials.json'),
    });
  });

  it('over a file there: its other members kept, its login replaced, its mode kept', async () => {
    mkdirSync(join(home, '.claude'));
    writeFileSync(own(), JSON.stringify({ mcpOAuth: { server: { clientId: 'c' } }, claudeAiOauth: { accessToken: 'old' } }), { mode: 0o640 });
    const login = placeholders();
    wrote({ claudeAiOauth: login });
    expect(await keepLoginFile(folder, claudeLogin.file, env())).toEqual({ kept: true, path: own() });
    expect(JSON.parse(readFileSync(own(), 'utf8'))).toEqual({ mcpOAuth: { server: { clientId: 'c' } }, claudeAiOauth: login });
    expect(statSync(own()).mode & 0o777).toBe(0o640);
  });

  it('over a file that is no JSON: that one kept aside, not lost', async () => {
    mkdirSync(join(home, '.claude'));
    writeFileSync(own(), 'not json');
    wrote({ claudeAiOauth: placeholders() });
    const kept = await keepLoginFile(folder, claudeLogin.file, env());
    expect(kept).toMatchObject({ kept: true, path: own() });
    const aside = (kept as { aside: string }).aside;
    expect(aside.startsWith(`${own()}.before-keyway-login-`)).toBe(true);
    expect(readFileSync(aside, 'utf8')).toBe('not json');
  });

  it('refused, the home untouched: a real token in it, no login in it, none written, a folder in the file’s place', async () => {
    const refused = async (why: RegExp) => {
      const kept = await keepLoginFile(folder, claudeLogin.file, env());
      expect(kept.kept).toBe(false);
      expect((kept as { why: string }).why).toMatch(why);
      expect(JSON.stringify(kept)).not.toContain(REAL);
    };
    await refused(/wrote no \.credentials\.json/);
    wrote({ claudeAiOauth: { ...placeholders(), refreshToken: REAL } });
    await refused(/holds a token keyway did not capture \(claudeAiOauth\.refreshToken\)/);
    wrote({ claudeAiOauth: {} });
    await refused(/holds no login/);
    writeFileSync(join(folder, '.credentials.json'), '[1]');
    await refused(/is not a JSON object/);
    expect(readdirSync(home)).toEqual([]);
    wrote({ claudeAiOauth: placeholders() });
    mkdirSync(own(), { recursive: true });
    await refused(/is there and is no login file/);
    expect(statSync(own()).isDirectory()).toBe(true);
  });
});
