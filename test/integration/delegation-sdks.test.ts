// Issue 89: a delegated agent driven by the official SDKs, as an agent framework's sub-agent would
// be. The parent holds two model grants and a rule; the child, minted with one grant, gets through
// only where both allow: its grant, within the parent's rule. Real proxy, real CLI minting, the
// OpenAI and Anthropic SDKs against the honest loopback stand-ins (which refuse a wrong key).
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { openaiHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-delegated-sdk`;
const LEAD_KEY = 'lead-sdk-key-0123456789';
const messages = [{ role: 'user' as const, content: 'hi' }];

describe('delegation through the official SDKs: the child gets only what it and its parent both allow', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY] }), openaiHandler({ host: 'api.openai.com', keys: [KEY] })],
    });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, LEAD_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1', 'api.openai.com': '127.0.0.1' } },
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
        },
        agents: {
          lead: {
            key: 'env:LEAD_KEY',
            grants: ['anthropic', 'openai'],
            // The parent may not make embeddings; everything else on the grant is open to it.
            rules: [{ grant: 'openai', deny: true, paths: ['/v1/embeddings'] }],
          },
        },
      },
    });
  });
  afterAll(async () => {
    await Promise.all(dispatchers.map((d) => d.close()));
    await proxy?.stop();
    await standin?.close();
  });

  const through = (proxyUrl: string) => {
    const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(dispatcher);
    return ((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
  };
  const base = (host: string) => `https://${host}:${standin.port}`;
  const clients = (proxyUrl: string) => {
    const fetch = through(proxyUrl);
    return {
      openai: new OpenAI({ apiKey: 'keyway-placeholder', baseURL: `${base('api.openai.com')}/v1`, fetch, maxRetries: 0 }),
      anthropic: new Anthropic({ apiKey: 'keyway-placeholder', baseURL: base('api.anthropic.com'), fetch, maxRetries: 0 }),
    };
  };
  const status = (err: unknown) => (err as { status?: number }).status;

  it('the parent uses both grants and is refused embeddings by its rule', async () => {
    const lead = clients(`http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`);
    expect((await lead.openai.chat.completions.create({ model: 'gpt-test-1', messages })).choices.length).toBeGreaterThan(0);
    expect((await lead.anthropic.messages.create({ model: 'claude-test-1', max_tokens: 20, messages })).content.length).toBeGreaterThan(0);
    expect(status(await lead.openai.embeddings.create({ model: 'text-embedding-test', input: 'hi' }).catch((e) => e))).toBe(403);
  });

  it('a child minted with the openai grant: chat passes, embeddings (the parent refuses) and anthropic (not handed on) do not', async () => {
    const minted = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'sub-agent', '--grants', 'openai', '--json']);
    expect(minted.stderr).toBe('');
    const child = clients((JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url);
    // The proxy reads the store when it changes: the child is served once it has.
    const chat = await waitForAsync(
      () => child.openai.chat.completions.create({ model: 'gpt-test-1', messages }).catch(() => undefined),
      "the child's first chat",
    );
    expect(chat.choices.length).toBeGreaterThan(0);
    const embeddings = await child.openai.embeddings.create({ model: 'text-embedding-test', input: 'hi' }).catch((e) => e);
    expect(status(embeddings)).toBe(403);
    expect(String((embeddings as Error).message)).toContain('agents.lead.rules[0]');
    const anthropic = await child.anthropic.messages.create({ model: 'claude-test-1', max_tokens: 20, messages }).catch((e) => e);
    expect(status(anthropic)).toBe(403);
    expect(JSON.stringify(anthropic)).not.toContain(KEY);
    // The child's request lines once its key was known (before, a 407 for a key the proxy had not yet read).
    const known = () => proxy.auditLines().filter((l) => l['agent'] === 'sub-agent' && l['decision'] !== 'admin' && l['code'] !== 'proxy_auth_required');
    const lines = await waitForAsync(async () => (known().length >= 3 ? known() : undefined), "the child's three audit lines");
    for (const line of lines) expect(line['chain'], JSON.stringify(line)).toEqual(['lead', 'sub-agent']);
    expect(JSON.stringify(lines)).not.toContain(KEY);
  });
});
