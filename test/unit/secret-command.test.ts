import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { looksLikeCommandRef } from '../../src/config/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { commandEnv, stderrLine } from '../../src/credentials/providers/cmd-secrets.ts';
import { commandMaterial } from '../../src/credentials/providers/cmd-material.ts';
import { KeywayError, ProxyError } from '../../src/errors/index.ts';
import { DOCS } from '../helpers/docs.ts';

const load = (raw: unknown) => parseConfig(raw, '/home/test');
const failure = (raw: unknown): string => {
  try {
    load(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    return (err as KeywayError).message;
  }
  throw new Error('expected the config to be refused');
};
const grant = (secret: unknown, type = 'bearer') => ({ grants: { g: { type, domains: ['api.example.test'], secret } } });

describe('secret: {cmd: …} in the config', () => {
  it("loads the README's examples, with the default cache and timeout where none is given", () => {
    const start = DOCS.indexOf('### A secret from a command');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(DOCS.slice(start))![1]!;
    const config = load(parseYaml(yaml));
    expect(config.grants['openai']!.secret).toEqual({
      kind: 'cmd',
      argv: ['op', 'read', 'op://Private/OpenAI/credential'],
      cacheMs: 600_000,
      timeoutMs: 10_000,
    });
    expect(config.grants['github']!.secret).toEqual({ kind: 'cmd', argv: ['gh', 'auth', 'token'], cacheMs: 600_000, timeoutMs: 10_000 });
    expect(config.grants['gcp']!.secret).toMatchObject({ cacheMs: 1_800_000 });
  });

  it('refuses a command that is not a list of words, bounds out of range, and unknown keys, naming the key', () => {
    expect(failure(grant({ cmd: 'op read op://x' }))).toContain('grants.g.secret');
    expect(failure(grant({ cmd: [] }))).toContain('expected at least the program');
    expect(failure(grant({ cmd: ['op', ''] }))).toContain('grants.g.secret.cmd.1');
    expect(failure(grant({ cmd: ['gh'], cache: '0s' }))).toContain('grants.g.secret.cache: expected a duration from 1s to 1d');
    expect(failure(grant({ cmd: ['gh'], timeout: '5m' }))).toContain('grants.g.secret.timeout: expected a duration from 100ms to 2m');
    expect(failure(grant({ cmd: ['gh'], shell: true }))).toContain('shell');
    expect(failure(grant('op read x'))).toContain('expected env:NAME, file:PATH, {cmd: [PROG, ARG…]} or {from: SOURCE, id: ITEM}');
  });

  it('refuses a command on an OAuth grant, which gets its tokens from its provider', () => {
    expect(failure(grant({ cmd: ['gh', 'auth', 'token'] }, 'oauth2'))).toContain('use type: bearer');
    expect(failure(grant({ cmd: ['x'] }, 'client_credentials'))).toContain('grants.g.secret');
  });

  it('takes a command only for a grant: never an agent key, a provider secret or the store URL', () => {
    expect(failure({ agents: { a: { key: { cmd: ['echo', 'k'] } } } })).toContain('agents.a.key');
    expect(failure({ providers: { p: { token_url: 'https://t.example/token', client_secret: { cmd: ['echo'] } } } })).toContain('providers.p.client_secret');
    expect(failure({ store: { backend: 'postgres', url: { cmd: ['echo'] } } })).toContain('store.url');
  });

  it('knows a command reference given as a value (API body, --value) so it can be refused', () => {
    expect(looksLikeCommandRef({ cmd: ['sh'] })).toBe(true);
    expect(looksLikeCommandRef(' {"cmd": ["sh", "-c", "id"]}\n')).toBe(true);
    expect(looksLikeCommandRef('{"username":"u","password":"p"}')).toBe(false);
    expect(looksLikeCommandRef('cmd-looking-token')).toBe(false);
  });
});

describe("a command's environment", () => {
  it("has keyway's environment without KEYWAY_* and without any variable the config names as a secret", () => {
    const config = load({
      grants: { g: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GRANT_SECRET' } },
      agents: { a: { key: 'env:AGENT_KEY' } },
      providers: { p: { token_url: 'https://t.example/token', client_secret: 'env:CLIENT_SECRET' } },
    });
    const env = commandEnv(
      { PATH: '/bin', HOME: '/h', KEYWAY_ADMIN_TOKEN: 't', KEYWAY_MASTER_KEY: 'k', GRANT_SECRET: 's', AGENT_KEY: 'a', CLIENT_SECRET: 'c', VAULT_TOKEN: 'v' },
      config,
    );
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', VAULT_TOKEN: 'v' });
  });
});

describe("a failing command's stderr line", () => {
  it('is the first non-blank line, with the stdout, the last good value and their JSON fields scrubbed', () => {
    expect(stderrLine('\n\nerror: token s3cr3t-value expired\nsecond', ['s3cr3t-value'])).toBe('error: token [redacted] expired');
    expect(stderrLine('bad password hunter2-long for robot', ['{"username":"robot","password":"hunter2-long"}'])).toBe(
      'bad password [redacted] for [redacted]',
    );
    expect(stderrLine('a\u001b[31mred\u0007', [])).toBe('a [31mred');
  });

  it('scrubs before it cuts, so a secret across the cut leaves none of it', () => {
    const secret = 'S'.repeat(40);
    const line = stderrLine(`${'x'.repeat(180)}${secret}`, [secret]);
    expect(line).not.toContain('S');
    expect(line.length).toBeLessThanOrEqual(200);
  });
});

describe("a command's output as the grant's material", () => {
  const command = { kind: 'cmd' as const, argv: ['aws', 'configure', 'export-credentials'], cacheMs: 60_000, timeoutMs: 10_000 };

  it('reads JSON material as `keyway secrets set` does: credential_process output for aws_sigv4, a key for hmac, a pair for basic', () => {
    const aws = JSON.stringify({
      Version: 1,
      AccessKeyId: 'AKIAEXAMPLE',
      SecretAccessKey: 'secret-key',
      SessionToken: 'session',
      Expiration: '2030-01-01T00:00:00Z',
    });
    expect(commandMaterial({ id: 'aws', type: 'aws_sigv4', secretCommand: command }, aws)).toEqual({
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'secret-key',
      sessionToken: 'session',
    });
    expect(commandMaterial({ id: 'h', type: 'hmac', secretCommand: command }, '{"key":"k3y","key_id":"id"}')).toMatchObject({ key: 'k3y', keyId: 'id' });
    expect(commandMaterial({ id: 'b', type: 'basic', secretCommand: command }, 'robot:pa55')).toEqual({ username: 'robot', password: 'pa55' });
  });

  it('refuses output that is not the grant kind of secret with 502 secret_unavailable, never quoting it', () => {
    for (const [type, text] of [
      ['bearer', 'line-one-canary\nline-two-canary'],
      ['aws_sigv4', '{"AccessKeyId":"only-canary"}'],
      ['basic', 'no-colon-canary'],
    ] as const) {
      let error: unknown;
      try {
        commandMaterial({ id: 'g', type, secretCommand: command }, text);
      } catch (err) {
        error = err;
      }
      expect(error, type).toBeInstanceOf(ProxyError);
      expect((error as ProxyError).code).toBe('secret_unavailable');
      expect((error as ProxyError).message).toContain(`grant "g": its secret command (aws) printed something that is not a ${type} secret`);
      expect((error as ProxyError).message).not.toContain('canary');
    }
  });
});
