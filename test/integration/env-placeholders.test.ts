import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { runCli, startProxy, type TestGrant, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Placeholders: `keyway env` (and so `keyway run`) gives SDKs the variables they insist on, set to
// keyway-placeholder, for the grants the agent may use. Never a real secret: every secret here is
// the CANARY. Only api.example.test is ever contacted (mapped to 127.0.0.1 by the proxy); the
// well-known hosts below only appear in grants.

const PLACEHOLDER = 'keyway-placeholder';
/** Shaped like a GitHub token (ghp_ and 36 letters and digits): recent gh checks it before it sends anything. */
const GITHUB_PLACEHOLDER = 'ghp_keywayplaceholder0000000000000000000';
const GRANTS: TestGrant[] = [
  // A static key for OpenAI, also covering the test host so a request can show the swap in flight.
  { id: 'openai', type: 'bearer', domains: ['api.openai.com', 'api.example.test'], secret: CANARY },
  // An OAuth grant from the GitHub preset: its env_names are GITHUB_TOKEN and GH_TOKEN.
  {
    id: 'github',
    type: 'oauth2',
    domains: ['api.github.com'],
    secret: { clientId: 'c', clientSecret: CANARY, refreshToken: CANARY },
    provider: 'github',
  } as TestGrant,
  // A wildcard that covers api.groq.com.
  { id: 'groq', type: 'api_key', domains: ['*.groq.com'], secret: CANARY, inject: { header: 'Authorization', format: 'Bearer {secret}' } },
  // Revoked: no placeholder.
  { id: 'mistral', type: 'bearer', domains: ['api.mistral.ai'], secret: CANARY, status: 'revoked' },
  // Not a well-known host: no placeholder.
  { id: 'internal', type: 'bearer', domains: ['internal.example.test'], secret: CANARY },
];
const AGENT_KEY = 'placeholder-agent-key';

let upstream: TestUpstream;
let proxy: TestProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  proxy = await startProxy({
    grants: GRANTS,
    config: {
      proxy: { listen: `127.0.0.1:${await freePort()}` },
      // A config grant (secret by reference) for Anthropic, and an agent limited to two grants.
      grants: {
        anthropic: { type: 'api_key', domains: ['api.anthropic.com'], inject: { header: 'x-api-key', format: '{secret}' }, secret: 'env:ANTHROPIC_SECRET' },
      },
      agents: { claude: { key: 'env:CLAUDE_KEY', grants: ['github', 'anthropic'] }, sdk: { key: 'env:SDK_KEY', grants: ['openai'] } },
    },
    env: { ANTHROPIC_SECRET: CANARY, CLAUDE_KEY: AGENT_KEY, SDK_KEY: 'sdk-agent-key' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

function noCanary(...outputs: string[]): void {
  for (const text of outputs) expect(text).not.toContain(CANARY);
}

describe('keyway env placeholders', () => {
  it('--json sets the well-known variables of every usable grant to the placeholder', async () => {
    const r = await proxy.cli(['env', '--json']);
    expect(r.code, r.stderr).toBe(0);
    noCanary(r.stdout, r.stderr);
    const vars = JSON.parse(r.stdout) as Record<string, string>;
    expect(vars['OPENAI_API_KEY']).toBe(PLACEHOLDER);
    expect(vars['GITHUB_TOKEN']).toBe(GITHUB_PLACEHOLDER);
    expect(vars['GH_TOKEN']).toBe(GITHUB_PLACEHOLDER);
    expect(vars['GROQ_API_KEY']).toBe(PLACEHOLDER);
    expect(vars['ANTHROPIC_API_KEY']).toBe(PLACEHOLDER);
    expect(vars).not.toHaveProperty('MISTRAL_API_KEY');
    // Nothing but proxy, CA and placeholder variables.
    const placeholders = Object.entries(vars)
      .filter(([, v]) => v === PLACEHOLDER || v === GITHUB_PLACEHOLDER)
      .map(([k]) => k)
      .sort();
    expect(placeholders).toEqual(['ANTHROPIC_API_KEY', 'GH_TOKEN', 'GITHUB_TOKEN', 'GROQ_API_KEY', 'OPENAI_API_KEY']);
    expect(vars['HTTPS_PROXY']).toBe(proxy.url);
  });

  it('prints them as export lines too', async () => {
    const r = await proxy.cli(['env']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`export OPENAI_API_KEY='${PLACEHOLDER}'`);
    expect(r.stdout).toContain(`export HTTPS_PROXY='${proxy.url}'`);
    noCanary(r.stdout, r.stderr);
  });

  it('with --agent, only for the grants that agent may use', async () => {
    const r = await proxy.cli(['env', '--json', '--agent', 'claude']);
    expect(r.code, r.stderr).toBe(0);
    const vars = JSON.parse(r.stdout) as Record<string, string>;
    expect(
      Object.entries(vars)
        .filter(([, v]) => v === PLACEHOLDER || v === GITHUB_PLACEHOLDER)
        .map(([k]) => k)
        .sort(),
    ).toEqual(['ANTHROPIC_API_KEY', 'GH_TOKEN', 'GITHUB_TOKEN']);
    noCanary(r.stdout, r.stderr);
    expect(r.stdout).toContain(`claude:${AGENT_KEY}@`); // the proxy URL carries the agent's own key, which is meant
  });

  it("without the master key, the running keyway's door gives the store's grants too (no store is opened here)", async () => {
    const r = await runCli(['env', '--json'], { KEYWAY_HOME: proxy.home });
    expect(r.code, r.stderr).toBe(0);
    const vars = JSON.parse(r.stdout) as Record<string, string>;
    expect(vars['ANTHROPIC_API_KEY']).toBe(PLACEHOLDER);
    expect(vars['OPENAI_API_KEY']).toBe(PLACEHOLDER);
    expect(r.stderr).not.toContain('placeholders for grants in the store skipped');
    noCanary(r.stdout, r.stderr);
  });

  it("without the master key and no keyway running, still prints the config grants' placeholders and says why the store was skipped", async () => {
    // The same home with nothing running for it: no door to ask.
    const alone = mkdtempSync(join(tmpdir(), 'keyway-env-alone-'));
    try {
      cpSync(proxy.home, alone, { recursive: true, filter: (src) => !/\/data\/(running|proxy\.json)/.test(src.slice(proxy.home.length)) });
      const r = await runCli(['env', '--json'], { KEYWAY_HOME: alone });
      expect(r.code, r.stderr).toBe(0);
      const vars = JSON.parse(r.stdout) as Record<string, string>;
      expect(vars['ANTHROPIC_API_KEY']).toBe(PLACEHOLDER);
      expect(vars).not.toHaveProperty('OPENAI_API_KEY');
      expect(r.stderr).toContain('placeholders for grants in the store skipped: no master key');
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });
});

describe('keyway run placeholders', () => {
  it('gives the command the placeholder, never the secret', async () => {
    const r = await proxy.cli(['run', '--', 'sh', '-c', 'echo "$OPENAI_API_KEY $GH_TOKEN"']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${PLACEHOLDER} ${GITHUB_PLACEHOLDER}`);
    noCanary(r.stdout, r.stderr);
  });

  it('leaves a variable the caller already set, but always replaces the proxy variables', async () => {
    const r = await runCli(['run', '--', 'sh', '-c', 'echo "$OPENAI_API_KEY|$GROQ_API_KEY|$HTTPS_PROXY"'], {
      KEYWAY_HOME: proxy.home,
      ...proxy.env,
      OPENAI_API_KEY: 'callers-own-value',
      HTTPS_PROXY: 'http://127.0.0.1:9',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`callers-own-value|${PLACEHOLDER}|${proxy.url}`);
  });

  it("the placeholder an SDK sends is replaced by the grant's secret in flight", async () => {
    const url = `https://api.example.test:${upstream.port}/echo?tag=placeholder-run`;
    const r = await proxy.cli([
      'run',
      '--agent',
      'sdk',
      '--',
      'sh',
      '-c',
      `curl -q -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPENAI_API_KEY" '${url}'`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('200');
    const seen = upstream.seen.filter((s) => s.url.includes('tag=placeholder-run'));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(PLACEHOLDER);
    noCanary(r.stdout, r.stderr);
  });
});
