// The admin token supplied from outside (KEYWAY_ADMIN_TOKEN, or a file named by
// KEYWAY_ADMIN_TOKEN_FILE such as a Kubernetes Secret), so a Prometheus scraper can be given the same
// token as the proxy: `keyway start` run as its own process with that environment, then /metrics
// called with the token as a scraper does. A bad token stops the start with one line naming the
// variable and what is wrong, never the value.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { slack } from '../helpers/load.ts';

// Long enough to be accepted, and the leak canary, so any output that carried it is caught.
const TOKEN = `${CANARY}-admin-token-0123456789`;

function homeWithConfig(): string {
  const home = makeHome();
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'keyway.yaml'),
    stringify({ grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } } }),
  );
  return home;
}

function adminUrl(home: string, path: string): string {
  const running = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { host: string; port: number } };
  return `http://${running.admin.host}:${running.admin.port}${path}`;
}

async function scrape(home: string, token: string | undefined): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(adminUrl(home, '/metrics'), { headers, signal: AbortSignal.timeout(slack(5_000)) });
  return { status: res.status, text: await res.text() };
}

describe.each([
  ['KEYWAY_ADMIN_TOKEN_FILE', (dir: string) => ({ KEYWAY_ADMIN_TOKEN_FILE: writeTokenFile(dir, `${TOKEN}\n`) })],
  ['KEYWAY_ADMIN_TOKEN', () => ({ KEYWAY_ADMIN_TOKEN: TOKEN })],
] as const)('the admin token from %s', (_name, supply) => {
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;

  beforeAll(async () => {
    home = homeWithConfig();
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: 'gh-secret-not-used-here', ...supply(home) });
    proxy = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('is the token /metrics takes as a scraper sends it, and no other', async () => {
    const scraped = await scrape(home, TOKEN);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^# HELP keyway_/m);
    expect((await scrape(home, 'not-the-admin-token-at-all')).status).toBe(401);
    expect((await scrape(home, undefined)).status).toBe(401);
  });

  it('is not written to the home: data/admin.token is never made', () => {
    expect(existsSync(join(home, 'data', 'admin.token'))).toBe(false);
  });

  it('is what `keyway status` sends, given the same environment (as `kubectl exec` is)', async () => {
    const status = await runCli(['status', '--json', '--home', home], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: proxy.child.pid, audit: 'ok' });
  });

  it('appears in no output', () => {
    for (const text of [proxy.stdout(), proxy.stderr()]) expect(findLeak(text, TOKEN)).toBeUndefined();
  });
});

describe('a bad supplied admin token', () => {
  const cases: Array<[string, (dir: string) => Record<string, string>, RegExp]> = [
    ['an empty variable', () => ({ KEYWAY_ADMIN_TOKEN: '' }), /KEYWAY_ADMIN_TOKEN is set but empty/],
    ['a short one', () => ({ KEYWAY_ADMIN_TOKEN: CANARY.slice(0, 10) }), /KEYWAY_ADMIN_TOKEN is too short; expected at least 16 characters/],
    ['two words', () => ({ KEYWAY_ADMIN_TOKEN: `${TOKEN} ${TOKEN}` }), /KEYWAY_ADMIN_TOKEN holds whitespace or control characters/],
    [
      'a missing file',
      (dir) => ({ KEYWAY_ADMIN_TOKEN_FILE: join(dir, 'no-such-token') }),
      /KEYWAY_ADMIN_TOKEN_FILE \(.*no-such-token\) cannot be read \(ENOENT\)/,
    ],
    ['an empty file', (dir) => ({ KEYWAY_ADMIN_TOKEN_FILE: writeTokenFile(dir, '\n') }), /KEYWAY_ADMIN_TOKEN_FILE \(.*\) is set but empty/],
    ['a file path set to nothing', () => ({ KEYWAY_ADMIN_TOKEN_FILE: ' ' }), /KEYWAY_ADMIN_TOKEN_FILE is set but empty; expected a file path/],
  ];

  it.each(cases)('%s stops the start with one line naming the variable, never the value', async (_name, supply, reason) => {
    const home = homeWithConfig();
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: 'gh', ...supply(home) });
    const started = await runCli(['start', '--home', home, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], env);
    expect(started.code).not.toBe(0);
    expect(started.stderr).toMatch(reason);
    expect(started.stderr.trim().split('\n')).toHaveLength(1);
    expect(findLeak(started.stdout + started.stderr, CANARY)).toBeUndefined();
    expect(existsSync(join(home, 'data', 'admin.token'))).toBe(false);
  });
});

function writeTokenFile(dir: string, content: string): string {
  const path = join(dir, 'admin-token-secret');
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}
