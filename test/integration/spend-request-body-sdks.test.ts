// The control for the strict read of a metered body under a budget (stage model-body, issue 85):
// the official SDKs' ordinary calls, whole and streamed, pass it and are counted to the token,
// through the real proxy, against the honest loopback stand-ins of the three vendors.
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { geminiHandler } from '../helpers/model-standins/gemini.ts';
import { openaiHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-sdk-key`;
const AGENT_KEY = 'sdk-agent-key-0123456789';
const USAGE = { input: 123, output: 45 };

describe('the official SDKs under a budget: their bodies pass the strict read, counted exactly', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let agent: ProxyAgent;

  beforeAll(async () => {
    const reply = { usage: USAGE };
    standin = await startStandinServer({
      handlers: [
        anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply }),
        openaiHandler({ host: 'api.openai.com', keys: [KEY], reply }),
        geminiHandler({ host: 'generativelanguage.googleapis.com', keys: [KEY], reply }),
      ],
    });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1', 'api.openai.com': '127.0.0.1', 'generativelanguage.googleapis.com': '127.0.0.1' } },
        grants: {
          anthropic: { type: 'bearer', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY' },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { coder: { key: 'env:AGENT_KEY' } },
        pricing: {
          'claude-test*': { input_per_mtok: 3, output_per_mtok: 15 },
          'gpt-test*': { input_per_mtok: 3, output_per_mtok: 15 },
          'gemini-test*': { input_per_mtok: 3, output_per_mtok: 15 },
        },
        budgets: [{ agent: 'coder', limit: { usd: 1000 }, per: 'day' }],
      },
    });
    agent = new ProxyAgent({ uri: `http://coder:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await standin?.close();
  });

  const viaKeyway = ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher: agent } as never)) as unknown as typeof fetch;
  const base = (host: string) => `https://${host}:${standin.port}`;

  it('Anthropic, OpenAI (Chat and Responses) and Gemini, whole and streamed', async () => {
    const anthropic = new Anthropic({ apiKey: 'keyway-placeholder', baseURL: base('api.anthropic.com'), fetch: viaKeyway, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'hi' }];
    await anthropic.messages.create({ model: 'claude-test-1', max_tokens: 20, messages });
    await anthropic.messages.stream({ model: 'claude-test-1', max_tokens: 20, messages }).finalMessage();

    const openai = new OpenAI({ apiKey: 'keyway-placeholder', baseURL: `${base('api.openai.com')}/v1`, fetch: viaKeyway, maxRetries: 0 });
    await openai.chat.completions.create({ model: 'gpt-test-1', messages, max_completion_tokens: 50 });
    const stream = await openai.chat.completions.create({ model: 'gpt-test-1', messages, stream: true });
    for await (const _chunk of stream);
    await openai.responses.create({ model: 'gpt-test-2', input: 'hi', max_output_tokens: 50 });
    for await (const _event of await openai.responses.create({ model: 'gpt-test-2', input: 'hi', stream: true }));

    const gemini = new GoogleGenAI({ apiKey: 'keyway-placeholder', httpOptions: { baseUrl: base('generativelanguage.googleapis.com') } });
    // @google/genai takes no fetch: it uses the global one, pointed at keyway for this call only.
    const saved = globalThis.fetch;
    globalThis.fetch = viaKeyway;
    try {
      await gemini.models.generateContent({ model: 'gemini-test-1', contents: 'hi', config: { maxOutputTokens: 64, systemInstruction: 'be brief' } });
      for await (const _chunk of await gemini.models.generateContentStream({ model: 'gemini-test-1', contents: 'hi' }));
    } finally {
      globalThis.fetch = saved;
    }

    const lines = await waitFor(() => {
      const metered = proxy.auditLines().filter((l) => l['usage'] !== undefined);
      return metered.length === 8 ? metered : undefined;
    }, 'the 8 metered audit lines');
    for (const line of lines) {
      expect(line['error']).toBeUndefined();
      expect(line['usage']).toMatchObject({ input_tokens: USAGE.input, output_tokens: USAGE.output });
      expect(line['usage']).not.toHaveProperty('partial');
    }
    expect(proxy.auditLines().filter((l) => l['error'] === 'budget_unmeterable')).toHaveLength(0);
  });
});
