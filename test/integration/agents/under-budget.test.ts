// The real agent CLIs under a model budget (issue 85): on a model host every request is metered,
// free or refused (budget_unmeterable), so a CLI that sent anything keyway does not list would be
// cut off by its own budget. Claude Code (claude -p, Messages over SSE) and Codex (codex exec,
// Responses over a WebSocket) each run a turn under a budget far from its limit, contained, against
// the stand-ins: the turn ends with the stand-in's reply, nothing is refused, and the turn is counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentWorld, builtinProfile, CODEX_EXEC, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { anthropicHandler } from '../../helpers/model-standins/anthropic.ts';
import { openaiHandler, openaiWebSocketHandler } from '../../helpers/model-standins/openai.ts';

const RUN_MS = 60_000;
const BUDGETS = [{ agent: 'agent', limit: { tokens: 1_000_000_000 }, per: 'day' }];
const USAGE = { input: 1200, output: 34 };

/** The audit lines that were refused, and the usage counted, of a world's keyway. */
function judged(world: AgentWorld) {
  const audit = world.proxy.auditLines();
  const counted = audit.reduce((sum, l) => sum + ((l['usage'] as { output_tokens?: number } | undefined)?.output_tokens ?? 0), 0);
  return { refused: audit.filter((l) => l['decision'] === 'deny'), counted };
}

describe('Claude Code under a model budget', () => {
  const KEY = `sk-ant-api03-${CANARY}-budget`;
  const REPLY = 'Stand-in says: counted under the budget.';
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.40`,
      hosts: ['api.anthropic.com', 'platform.claude.com'],
      handlers: [anthropicHandler({ keys: [KEY], reply: { text: REPLY, usage: USAGE } })],
      grants: {
        anthropic: { type: 'api_key', domains: ['api.anthropic.com'], inject: { header: 'x-api-key', format: '{secret}' }, secret: 'env:ANTHROPIC_REAL_KEY' },
      },
      secrets: { ANTHROPIC_REAL_KEY: KEY },
      budgets: BUDGETS,
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('answers, with nothing refused and its turn counted', { timeout: 2 * RUN_MS }, async () => {
    const profile = builtinProfile('claude-code');
    const r = await world.run(['claude', '-p', 'Say hello.'], profile.flags, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    const { refused, counted } = judged(world);
    expect(refused).toEqual([]);
    expect(counted).toBeGreaterThanOrEqual(USAGE.output);
  });
});

describe('Codex under a model budget', () => {
  const KEY = `sk-proj-${CANARY}-budget`;
  const REPLY = 'Stand-in says: the socket was metered under the budget.';
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.41`,
      hosts: ['api.openai.com', 'chatgpt.com', 'auth.openai.com'],
      handlers: [openaiHandler({ keys: [KEY], reply: { text: REPLY, usage: USAGE } })],
      websocketHandlers: [openaiWebSocketHandler({ keys: [KEY], reply: { text: REPLY, usage: USAGE } })],
      grants: {
        openai: { type: 'api_key', domains: ['api.openai.com'], inject: { header: 'Authorization', format: 'Bearer {secret}' }, secret: 'env:OPENAI_REAL_KEY' },
      },
      secrets: { OPENAI_REAL_KEY: KEY },
      budgets: BUDGETS,
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('answers over its WebSocket, with nothing refused and its turn counted', { timeout: 2 * RUN_MS }, async () => {
    const profile = builtinProfile('codex');
    const r = await world.run([...CODEX_EXEC, 'Say hello.'], profile.flags, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    const { refused, counted } = judged(world);
    expect(refused).toEqual([]);
    expect(counted).toBeGreaterThanOrEqual(USAGE.output);
  });
});
