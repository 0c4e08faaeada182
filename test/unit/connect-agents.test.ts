import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiKeyGrantInput, readApiKey } from '../../src/profiles/connect/api-key.ts';
import { credentialFilePath, readCredentialFile, withPlaceholders } from '../../src/profiles/connect/credential-file.ts';
import { loginGrantInput } from '../../src/profiles/connect/login-grant.ts';
import { AGENT_TARGET_NAMES, AGENT_TARGETS } from '../../src/profiles/connect/targets.ts';
import { BUILTIN_PROFILES } from '../../src/profiles/run/index.ts';
import { makePlaceholder } from '../../src/capture/core/placeholder.ts';
import { grantCreateInput, parseInput } from '../../src/operations/grant-schema.ts';

// The pure parts of `keyway connect AGENT`: the key as read from stdin, the grants the table makes
// (each must pass the same checks as `keyway grants add`), and the credential file's rewrite.

const KEY = 'sk-ant-api03-UNITcanary0123456789';

describe('readApiKey', () => {
  it('takes one key, trimmed', () => {
    expect(readApiKey(`  ${KEY}\n`)).toBe(KEY);
  });

  it.each([
    ['empty', ' \n\t'],
    ['two lines', `${KEY}\n${KEY}`],
    ['a space inside', `${KEY} ${KEY}`],
    ['a control character', `${KEY}\u0007`],
    ['non-ASCII', `${KEY}é`],
    ['a whole file', `${KEY}${'x'.repeat(5000)}`],
  ])('refuses %s, without quoting it', (_what, text) => {
    let message = '';
    try {
      readApiKey(text);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain(KEY.slice(8));
  });
});

describe('the grants the table makes', () => {
  it.each(AGENT_TARGET_NAMES)('%s: its api_key grant and its login_capture grant pass the checks of grants add', (name) => {
    const target = AGENT_TARGETS[name];
    const key = parseInput(grantCreateInput, apiKeyGrantInput(target, name, KEY), 'cli');
    expect(key).toMatchObject({ type: 'api_key', domains: [...target.apiKey.hosts] });
    const login = parseInput(grantCreateInput, loginGrantInput(target, name, 'agent-1'), 'cli');
    expect(login).toMatchObject({ type: 'login_capture', agent: 'agent-1' });
  });

  it('each login names where its token endpoint is and where its access token goes', () => {
    for (const name of AGENT_TARGET_NAMES) {
      const { login } = AGENT_TARGETS[name];
      expect(login.capturable, name).toBe(true);
      if (!login.capturable) continue;
      expect(login.endpoints.length).toBeGreaterThan(0);
      expect(login.bearer.length).toBeGreaterThan(0);
      expect(
        login.file.tokens.some((t) => t.field === 'refresh_token'),
        name,
      ).toBe(true);
    }
  });
});

describe('the hosts and paths a connect grant covers (default deny)', () => {
  const profileHosts = (name: string): string[] => (BUILTIN_PROFILES[name] as { hosts: Array<{ host: string }> }).hosts.map((h) => h.host);

  it.each(AGENT_TARGET_NAMES)('%s: every host its grants cover is a host of its built-in profile', (name) => {
    const target = AGENT_TARGETS[name];
    const hosts = profileHosts(name);
    const key = parseInput(grantCreateInput, apiKeyGrantInput(target, name, KEY), 'cli') as { domains: string[] };
    const login = parseInput(grantCreateInput, loginGrantInput(target, name, undefined), 'cli') as {
      domains: string[];
      capture: { endpoints: Array<{ host: string }>; resolve?: Array<{ host?: string; path?: string }> };
    };
    const covered = [...key.domains, ...login.domains, ...login.capture.endpoints.map((e) => e.host)];
    for (const host of covered) expect(hosts, `${name}: ${host}`).toContain(host);
    for (const position of login.capture.resolve ?? []) expect(hosts, `${name}: resolve ${JSON.stringify(position)}`).toContain(position.host);
  });

  it.each(AGENT_TARGET_NAMES)('%s: its login grant resolves a token only at a host and path it names', (name) => {
    const login = parseInput(grantCreateInput, loginGrantInput(AGENT_TARGETS[name], name, undefined), 'cli') as {
      capture: { resolve?: Array<{ host?: string; path?: string }> };
    };
    // Left to capture.resolve's defaults, the access token would go on every path of every host the grant covers.
    expect(login.capture.resolve?.length).toBeGreaterThan(0);
    for (const position of login.capture.resolve ?? []) {
      expect(position.host, JSON.stringify(position)).toBeDefined();
      expect(position.path, JSON.stringify(position)).toMatch(/^\//);
      expect(position.path).not.toBe('/*');
    }
  });
});

describe('the credential file', () => {
  const claude = AGENT_TARGETS['claude-code'].login;
  if (!claude.capturable) throw new Error('claude-code has a captured login');

  it('is found where the agent looks: the variable that moves it, else under HOME', () => {
    expect(credentialFilePath(claude.file, { HOME: '/home/a' })).toBe('/home/a/.claude/.credentials.json');
    expect(credentialFilePath(claude.file, { HOME: '/home/a', CLAUDE_CONFIG_DIR: '/srv/claude' })).toBe('/srv/claude/.credentials.json');
    expect(() => credentialFilePath(claude.file, { HOME: '/home/a', CLAUDE_CONFIG_DIR: 'relative' })).toThrow(/absolute/);
  });

  it('is rewritten byte for byte but for the tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-unit-cred-'));
    const path = join(dir, 'creds.json');
    const text =
      '{\n  "claudeAiOauth" : {"accessToken":"sk-ant-oat01-AAAAAAAAAAAAAAAAAAAAAAAA", "refreshToken": "sk-ant-ort01-BBBBBBBBBBBBBBBBBBBBBBBB",\n "expiresAt": 1900000000000, "n": 12345678901234567890}}\n';
    writeFileSync(path, text, { mode: 0o600 });
    const file = await readCredentialFile(path, claude.file);
    expect(file.expiresAt).toBe(1_900_000_000_000);
    expect(file.mode).toBe(statSync(path).mode & 0o777);
    const swaps = new Map(file.tokens.map((t) => [t.value, makePlaceholder(t.value).text]));
    const out = withPlaceholders(file, swaps);
    let expected = text;
    for (const [real, placeholder] of swaps) expected = expected.replace(real, placeholder);
    expect(out).toBe(expected);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('refuses a token written in a form a plain replacement would miss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-unit-cred-'));
    const path = join(dir, 'creds.json');
    // JSON may escape any character: "\u0041" is A. The real value is then not in the text as written.
    writeFileSync(
      path,
      '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-\\u0041AAAAAAAAAAAAAAAAAAAAAAA","refreshToken":"sk-ant-ort01-BBBBBBBBBBBBBBBBBBBBBBBB"}}',
    );
    const file = await readCredentialFile(path, claude.file);
    const swaps = new Map(file.tokens.map((t) => [t.value, makePlaceholder(t.value).text]));
    expect(() => withPlaceholders(file, swaps)).toThrow(/claudeAiOauth.accessToken is written in a way keyway does not rewrite/);
  });
});
