// Defect 6, end to end: empty or whitespace-only secret material never becomes a credential. Each
// case is refused where it enters, with one line that names the grant, agent or file, never a value.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.ts';
import { cleanEnv, cliCommand, makeHome, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

/** `keyway start` in a child; resolves with its stderr once it failed, or once it said it listens. */
function startChild(home: string): Promise<{ stderr: string; code: number | null }> {
  const env = { ...cleanEnv(), KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
  const child = spawn(...cliCommand(['start', '--home', home, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']), {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    const finish = (code: number | null) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ stderr, code });
    };
    const timer = setTimeout(() => finish(null), 15_000);
    child.once('exit', (code) => finish(code));
    // Still running after saying what went wrong (or after listening): judge on what it said.
    child.stderr.on('data', () => {
      if (/admin token|keyway proxy on/.test(stderr)) setTimeout(() => finish(child.exitCode), 300);
    });
  });
}

describe('empty secrets are refused', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it('an empty data/admin.token stops the start with one clear line', async () => {
    const home = makeHome();
    mkdirSync(join(home, 'data'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'data', 'admin.token'), '\n', { mode: 0o600 });
    const { stderr } = await startChild(home);
    expect(stderr).toContain(`the admin token file ${join(home, 'data', 'admin.token')} is empty; delete it and keyway makes a new token at the next start`);
  });

  it('an agent key from an empty file is refused at start, naming the agent and the file', async () => {
    const home = makeHome();
    const keyFile = join(home, 'claude.key');
    writeFileSync(keyFile, '');
    await expect(startProxy({ home, config: { agents: { claude: { key: `file:${keyFile}` } } } })).rejects.toThrow(
      `agents.claude.key: file ${keyFile} is empty`,
    );
  });

  it('an agent key from a blank variable is refused at start', async () => {
    await expect(startProxy({ env: { CLAUDE_KEY: '  ' }, config: { agents: { claude: { key: 'env:CLAUDE_KEY' } } } })).rejects.toThrow(
      'agents.claude.key: environment variable CLAUDE_KEY is empty',
    );
  });

  it('a grant secret from a blank variable or a basic secret with an empty password is refused at start', async () => {
    const grant = (type: string, secret: string) => ({
      grants: { openai: { type, domains: ['api.example.test'], secret, ...(type === 'api_key' ? { inject: { header: 'x-api-key' } } : {}) } },
    });
    await expect(startProxy({ env: { OPENAI_KEY: ' \t ' }, config: grant('api_key', 'env:OPENAI_KEY') })).rejects.toThrow(
      'grants.openai.secret: environment variable OPENAI_KEY is empty',
    );
    await expect(startProxy({ env: { BASIC: 'user:' }, config: grant('basic', 'env:BASIC') })).rejects.toThrow(
      /grants\.openai\.secret: a basic secret needs a non-empty password/,
    );
    await expect(startProxy({ env: { BASIC: 'user:  ' }, config: grant('basic', 'env:BASIC') })).rejects.toThrow(
      /grants\.openai\.secret: a basic secret needs a non-empty password/,
    );
  });

  describe('with a running proxy', () => {
    let proxy: TestProxy;
    beforeAll(async () => {
      proxy = await startProxy({
        env: { CLAUDE_KEY: 'claude-agent-key' },
        config: { agents: { claude: { key: 'env:CLAUDE_KEY' } } },
        grants: [
          { id: 'blank', type: 'bearer', domains: ['api.example.test'], secret: '   ' },
          { id: 'basic', type: 'basic', domains: ['other.example.test'], secret: { username: 'u', password: '' } },
          { id: 'later', type: 'bearer', domains: ['plain.example.test'] },
        ],
      });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    const curl = (url: string, agent: string) =>
      runProcess(
        'curl',
        ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://${agent}@127.0.0.1:${proxy.port}`, '--proxy-cacert', proxy.caPath, url],
        cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
      );

    it('an empty or blank proxy password never authenticates', async () => {
      const before = upstream.seen.length;
      for (const agent of ['claude:', 'claude:%20%20', ':', 'claude']) {
        const res = await curl(`https://api.example.test:${upstream.port}/echo`, agent);
        expect(res.stdout, agent).not.toBe('200');
      }
      expect(upstream.seen.length).toBe(before);
    });

    it('blank material already in the store is never injected: 401 grant_no_secret, nothing upstream', async () => {
      const before = upstream.seen.length;
      for (const host of ['api.example.test', 'other.example.test']) {
        const res = await curl(`https://${host}:${upstream.port}/echo`, 'claude:claude-agent-key');
        expect(res.stdout, host).toBe('401');
      }
      expect(upstream.seen.length).toBe(before);
      const lines = () => proxy.auditLines().filter((l) => l['grant'] === 'blank' || l['grant'] === 'basic');
      // Audit lines are appended in batches, a few ms after the response.
      await waitFor(() => lines().length >= 2);
      expect(lines().map((l) => l['code'])).toEqual(['grant_no_secret', 'grant_no_secret']);
    });

    it.each([
      ['later', ['--value', '   ']],
      ['later', ['--stdin'], '\n'],
      ['later', ['--stdin'], ' \t \n'],
      ['basic', ['--value', '{"username":"u","password":"  "}']],
    ] as const)('keyway secrets set %s %j refuses blank material', async (id, flags, stdin?: string) => {
      const res = await proxy.cli(['secrets', 'set', id, ...flags], stdin);
      expect(res.code).not.toBe(0);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toMatch(/non-empty/);
    });

    it('keyway connect refuses an empty client secret from stdin before any request', async () => {
      const res = await proxy.cli(['connect', 'github', '--client-id', 'c', '--client-secret-stdin', '--no-browser', '--timeout', '1s'], ' \n');
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain('--client-secret-stdin: the client secret read from stdin is empty');
    });

    it('keyway secrets set refuses an oauth2 secret with a blank clientId or refreshToken', async () => {
      await proxy.cli(['grants', 'add', 'oauthy', '--type', 'oauth2', '--domains', 'slow.example.test']);
      for (const value of ['{"clientId":" ","refreshToken":"r"}', '{"client_id":"c","refresh_token":"  "}']) {
        const res = await proxy.cli(['secrets', 'set', 'oauthy', '--value', value]);
        expect(res.code, value).not.toBe(0);
        expect(res.stderr).toMatch(/non-empty/);
      }
    });
  });
});
