// The real Gemini CLI (@google/gemini-cli, a devDependency: a Node bundle) in its headless mode, `gemini
// -p`, under `keyway run --contain`, against a loopback stand-in of the Gemini API that keyway maps
// generativelanguage.googleapis.com (and play.googleapis.com, its usage statistics) to, every other host
// denied. The agent holds keyway's placeholders (GEMINI_API_KEY and GOOGLE_API_KEY), the stand-in sees
// the real key in x-goog-api-key, the answer comes back over SSE.
// Needs root or unprivileged user namespaces (CI runs as root): the stand-in listens on port 443.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentWorld, explicitProfile, filesUnder, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { geminiHandler } from '../../helpers/model-standins/gemini.ts';

// What the built-in profile `gemini-cli` opens (/tmp/agents-facts.md of issue 62); FLAGS becomes
// `['--profile', 'gemini-cli']` when it lands.
const GEMINI_CLI = {
  state: ['~/.gemini'],
  env: {
    // Headless, it refuses a folder the user has not trusted in its own dialog; contained, the folder
    // is the one keyway was started in.
    GEMINI_CLI_TRUST_WORKSPACE: 'true',
  },
};
const HOSTS = ['generativelanguage.googleapis.com', 'play.googleapis.com', 'cloudcode-pa.googleapis.com', 'oauth2.googleapis.com'];
const RUN_MS = 60_000;

describe('Gemini CLI (gemini -p) under keyway run --contain, with an API key', () => {
  const KEY = `AIza-${CANARY}-gemini`;
  const REPLY = 'Stand-in says: Gemini answered through keyway.';
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.30`,
      hosts: HOSTS,
      handlers: [geminiHandler({ keys: [KEY], reply: { text: REPLY } })],
      grants: {
        gemini: {
          type: 'api_key',
          domains: ['generativelanguage.googleapis.com'],
          inject: { header: 'x-goog-api-key', format: '{secret}' },
          secret: 'env:GEMINI_REAL_KEY',
        },
      },
      secrets: { GEMINI_REAL_KEY: KEY },
    });
  }, 120_000);
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('prints the stand-in reply; the stand-in saw the real key, the agent placeholders; usage statistics off by its settings file', {
    timeout: 2 * RUN_MS,
  }, async () => {
    // Its usage statistics (play.googleapis.com) have no variable: only its settings file turns them off.
    mkdirSync(join(world.home, '.gemini'), { recursive: true });
    writeFileSync(join(world.home, '.gemini', 'settings.json'), JSON.stringify({ privacy: { usageStatisticsEnabled: false } }));
    const profile = explicitProfile(GEMINI_CLI, world.home);
    const FLAGS = profile.flags; // with profiles: ['--profile', 'gemini-cli']
    // A model named: by default ("auto") it first asks a small model to pick one, in JSON.
    const r = await world.run(['sh', '-c', 'env; exec gemini -m gemini-2.5-flash -p "$0"', 'Say hello.'], FLAGS, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    for (const name of ['GEMINI_API_KEY', 'GOOGLE_API_KEY']) {
      const placeholder = new RegExp(`^${name}=(.*)$`, 'm').exec(r.stdout)?.[1];
      expect(placeholder, name).toBeDefined();
      expect(placeholder).not.toContain(CANARY);
    }
    const calls = world.standin.seen.filter((s) => s.path === '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.query.get('alt')).toBe('sse');
    expect(calls[0]?.headers['x-goog-api-key']).toBe(KEY);
    expect(new Set(world.standin.seen.map((s) => s.host))).toEqual(new Set(['generativelanguage.googleapis.com']));
    const audit = world.proxy.auditLines();
    expect(audit.filter((l) => l['decision'] === 'deny')).toEqual([]);
    expect(audit).toContainEqual(
      expect.objectContaining({
        host: 'generativelanguage.googleapis.com',
        path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent',
        decision: 'inject',
        agent: 'agent',
        via: 'contain',
        status: 200,
      }),
    );
    // Its state reached the host: the session it kept (tmp/<project>/chats/session-*.jsonl).
    const state = filesUnder(join(world.home, '.gemini')).map((f) => f.slice(world.home.length));
    expect(
      state.filter((f) => /\/chats\/session-.*\.jsonl$/.test(f)),
      state.join(' '),
    ).toHaveLength(1);
    expect(world.leak(KEY)).toBeUndefined();
  });
});
