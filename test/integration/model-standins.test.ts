// The model stand-ins (test/helpers/model-standins) against the vendors' official SDKs: each answers
// what the SDK asks in the vendor's wire format (whole and streamed, the usage numbers a test set
// coming back in the SDK's own fields), and refuses a wrong or missing credential the way the vendor
// does, so a test that relies on "the stand-in saw the real key" relies on a server that checks it.
// The SDKs reach the stand-in as `localhost` over TLS, trusting the test CA and nothing else.
import { once } from 'node:events';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { chatgptBackendHandler } from '../helpers/model-standins/chatgpt-backend.ts';
import { codeAssistHandler } from '../helpers/model-standins/code-assist.ts';
import { geminiHandler } from '../helpers/model-standins/gemini.ts';
import { googleTokenInfoHandler } from '../helpers/model-standins/google-login.ts';
import { openaiHandler, openaiWebSocketHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { tokenEndpoint } from '../helpers/model-standins/token-endpoint.ts';

const KEY = `${CANARY}-standin-key`;
const HOST = 'localhost';
const usage = { input: 123, output: 45, cacheRead: 7, cacheWrite: 3, reasoning: 5 };

describe('model stand-ins, with the official SDKs', () => {
  // One server per vendor, each answering for `localhost` (the name the SDKs dial): the Anthropic and
  // OpenAI routes share paths (/v1/…), as the vendors' own hosts do not.
  let server: StandinServer;
  let base: string;
  let openaiServer: StandinServer;
  let openaiBase: string;
  let geminiServer: StandinServer;
  let geminiBase: string;
  const dispatcher = new Agent({ connect: { ca: TLS_FIXTURES.ca } });
  // Every SDK takes a fetch: this one trusts the test CA, and only it.
  const trustingFetch = ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
  const tokens = tokenEndpoint({
    host: HOST,
    path: '/v1/oauth/token',
    refreshToken: `${CANARY}-refresh-0`,
    body: 'json',
    clientId: 'client-1',
    accessPrefix: 'sk-ant-oat01-',
  });

  beforeAll(async () => {
    server = await startStandinServer({
      handlers: [
        tokens.handler,
        anthropicHandler({ host: HOST, keys: [KEY], accessToken: tokens.isValidAccess, reply: { text: 'Anthropic says hi.', usage } }),
      ],
    });
    base = `https://${HOST}:${server.port}`;
    openaiServer = await startStandinServer({
      handlers: [openaiHandler({ host: HOST, keys: [KEY], reply: { text: 'OpenAI says hi.', usage } })],
      websocketHandlers: [openaiWebSocketHandler({ host: HOST, keys: [KEY], reply: { text: 'Over a socket.', usage } })],
    });
    openaiBase = `https://${HOST}:${openaiServer.port}`;
    geminiServer = await startStandinServer({ handlers: [geminiHandler({ host: HOST, keys: [KEY], reply: { text: 'Gemini says hi.', usage } })] });
    geminiBase = `https://${HOST}:${geminiServer.port}`;
  });
  afterAll(async () => {
    await Promise.all([server?.close(), openaiServer?.close(), geminiServer?.close()]);
    await dispatcher.close();
  });

  it('Anthropic Messages: whole and streamed, usage in message_start and message_delta; a wrong key is 401 authentication_error', async () => {
    const client = new Anthropic({ apiKey: KEY, baseURL: base, fetch: trustingFetch, maxRetries: 0 });
    const whole = await client.messages.create({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(whole.content).toEqual([{ type: 'text', text: 'Anthropic says hi.' }]);
    expect(whole.usage).toMatchObject({ input_tokens: 123, output_tokens: 45, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 });
    const stream = client.messages.stream({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    const streamed = await stream.finalMessage();
    expect(streamed.content).toEqual([{ type: 'text', text: 'Anthropic says hi.' }]);
    expect(streamed.usage).toMatchObject({ input_tokens: 123, output_tokens: 45 });
    // SDK 1.x sends the key as a bearer token (API version 2026-10-21); Claude Code sends x-api-key.
    expect(server.seen.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
    const viaHeader = await trustingFetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(viaHeader.status).toBe(200);
    const wrongHeader = await trustingFetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-wrong' },
      body: '{}',
    });
    expect(wrongHeader.status).toBe(401);

    const wrong = new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: base, fetch: trustingFetch, maxRetries: 0 });
    const refused = await wrong.messages.create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((refused as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const none = await trustingFetch(`${base}/v1/messages`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(none.status).toBe(401);
  });

  it('Anthropic with a subscription token: Bearer plus the OAuth beta flag; a token it did not issue, or no flag, is refused', async () => {
    const refreshed = (await (
      await trustingFetch(`${base}/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: `${CANARY}-refresh-0`, client_id: 'client-1' }),
      })
    ).json()) as { access_token: string };
    const oauth = new Anthropic({
      authToken: refreshed.access_token,
      baseURL: base,
      fetch: trustingFetch,
      maxRetries: 0,
      defaultHeaders: { 'anthropic-beta': 'oauth-2025-04-20' },
    });
    const answer = await oauth.messages.create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.content).toEqual([{ type: 'text', text: 'Anthropic says hi.' }]);
    const noFlag = new Anthropic({ authToken: refreshed.access_token, baseURL: base, fetch: trustingFetch, maxRetries: 0 });
    await expect(noFlag.messages.create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
    const forged = new Anthropic({
      authToken: 'sk-ant-oat01-forged',
      baseURL: base,
      fetch: trustingFetch,
      maxRetries: 0,
      defaultHeaders: { 'anthropic-beta': 'oauth-2025-04-20' },
    });
    await expect(forged.messages.create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
  });

  it('OpenAI Responses (whole, SSE) and Chat Completions (whole, streamed with include_usage); a wrong key is 401 invalid_api_key', async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${openaiBase}/v1`, fetch: trustingFetch, maxRetries: 0 });
    const whole = await client.responses.create({ model: 'gpt-test', input: 'hi' });
    expect(whole.output_text).toBe('OpenAI says hi.');
    expect(whole.usage).toMatchObject({
      input_tokens: 123,
      output_tokens: 45,
      input_tokens_details: { cached_tokens: 7 },
      output_tokens_details: { reasoning_tokens: 5 },
    });
    const events = await client.responses.create({ model: 'gpt-test', input: 'hi', stream: true });
    let text = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of events) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(text).toBe('OpenAI says hi.');
    expect(completed?.usage).toMatchObject({ input_tokens: 123, output_tokens: 45, total_tokens: 168 });

    const chat = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.choices[0]?.message.content).toBe('OpenAI says hi.');
    expect(chat.usage).toMatchObject({ prompt_tokens: 123, completion_tokens: 45 });
    const chunks = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let joined = '';
    let counted: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of chunks) {
      joined += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) counted = chunk.usage;
    }
    expect(joined).toBe('OpenAI says hi.');
    expect(counted).toMatchObject({ prompt_tokens: 123, completion_tokens: 45, prompt_tokens_details: { cached_tokens: 7 } });

    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${openaiBase}/v1`, fetch: trustingFetch, maxRetries: 0 });
    const refused = await wrong.responses.create({ model: 'gpt-test', input: 'hi' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((refused as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
  });

  it('OpenAI Responses over a WebSocket (as Codex asks first): response.create gets the stream as messages; a wrong key is refused at the upgrade', async () => {
    const open = (key: string) =>
      new WebSocket(`wss://${HOST}:${openaiServer.port}/v1/responses`, { ca: TLS_FIXTURES.ca, headers: { authorization: `Bearer ${key}` } });
    const socket = open(KEY);
    await once(socket, 'open');
    const events: Array<{ type: string; response?: { usage?: unknown } }> = [];
    const done = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        const event = JSON.parse(data.toString()) as { type: string };
        events.push(event);
        if (event.type === 'response.completed') resolve();
      }),
    );
    socket.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: [] }));
    await done;
    socket.close();
    expect(events[0]?.type).toBe('response.created');
    expect(events.at(-1)?.response?.usage).toMatchObject({ input_tokens: 123, output_tokens: 45 });
    const refused = open('sk-wrong');
    const [, response] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number }];
    expect(response.statusCode).toBe(401);
    refused.on('error', () => undefined); // the refused upgrade: ws reports the socket it never opened
    refused.terminate();
  });

  it('Gemini generateContent and streamGenerateContent (SSE), usageMetadata; a wrong key is 400 API_KEY_INVALID, none 403', async () => {
    const client = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: geminiBase } });
    // The SDK uses the global fetch: point it at the test CA for these calls only.
    const globalFetch = globalThis.fetch;
    globalThis.fetch = trustingFetch;
    try {
      const whole = await client.models.generateContent({ model: 'gemini-test', contents: 'hi' });
      expect(whole.text).toBe('Gemini says hi.');
      expect(whole.usageMetadata).toMatchObject({
        promptTokenCount: 123,
        candidatesTokenCount: 40,
        thoughtsTokenCount: 5,
        cachedContentTokenCount: 7,
        totalTokenCount: 168,
      });
      let text = '';
      let last: unknown;
      for await (const chunk of await client.models.generateContentStream({ model: 'gemini-test', contents: 'hi' })) {
        text += chunk.text ?? '';
        if (chunk.usageMetadata) last = chunk.usageMetadata;
      }
      expect(text).toBe('Gemini says hi.');
      expect(last).toMatchObject({ promptTokenCount: 123, totalTokenCount: 168 });
      expect(geminiServer.seen.at(-1)?.query.get('alt')).toBe('sse');
      expect(geminiServer.seen.at(-1)?.headers['x-goog-api-key']).toBe(KEY);
      const wrong = new GoogleGenAI({ apiKey: 'AIza-wrong', httpOptions: { baseUrl: geminiBase } });
      const refused = await wrong.models.generateContent({ model: 'gemini-test', contents: 'hi' }).catch((e: unknown) => e);
      expect(String(refused)).toContain('API_KEY_INVALID');
    } finally {
      globalThis.fetch = globalFetch;
    }
    const none = await trustingFetch(`${geminiBase}/v1beta/models/gemini-test:generateContent`, { method: 'POST', body: '{"contents":[]}' });
    expect(none.status).toBe(403);
  });

  it('token endpoint: a refresh rotates the refresh token; the old one is invalid_grant from then on; each is counted', async () => {
    const ep = tokenEndpoint({ host: HOST, path: '/rotating', refreshToken: 'r0', body: 'json', clientId: 'c' });
    const local = await startStandinServer({ handlers: [ep.handler] });
    const refresh = async (token: string, body = 'json') =>
      trustingFetch(`https://${HOST}:${local.port}/rotating`, {
        method: 'POST',
        headers: { 'content-type': body === 'json' ? 'application/json' : 'application/x-www-form-urlencoded' },
        body:
          body === 'json'
            ? JSON.stringify({ grant_type: 'refresh_token', refresh_token: token, client_id: 'c' })
            : new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'c' }).toString(),
      });
    try {
      const first = await refresh('r0');
      expect(first.status).toBe(200);
      const answer = (await first.json()) as { access_token: string; refresh_token: string; expires_in: number };
      expect(answer.refresh_token).not.toBe('r0');
      expect(ep.isValidAccess(answer.access_token)).toBe(true);
      const replay = await refresh('r0');
      expect(replay.status).toBe(400);
      expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
      expect((await refresh(answer.refresh_token, 'form')).status).toBe(400); // JSON only, as the vendor's
      expect((await refresh(answer.refresh_token)).status).toBe(200);
      expect(ep.refreshes).toBe(2);
      expect(ep.attempts.map((a) => a.ok)).toEqual([true, false, true]);
    } finally {
      await local.close();
    }
  });

  it('the login-side stand-ins (ChatGPT backend, Code Assist, Google tokeninfo) answer an issued token and refuse another', async () => {
    const ep = tokenEndpoint({ host: HOST, path: '/token', refreshToken: 'r0', body: 'form' });
    const local = await startStandinServer({
      handlers: [
        ep.handler,
        chatgptBackendHandler({ host: HOST, accessToken: ep.isValidAccess }),
        codeAssistHandler({ host: HOST, accessToken: ep.isValidAccess, reply: { text: 'Code Assist says hi.', usage } }),
        googleTokenInfoHandler({ host: HOST, clientId: 'c', accessToken: ep.isValidAccess }),
      ],
    });
    const at = (path: string, token: string, body?: unknown) =>
      trustingFetch(`https://${HOST}:${local.port}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    try {
      const issued = (await (
        await trustingFetch(`https://${HOST}:${local.port}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=refresh_token&refresh_token=r0',
        })
      ).json()) as { access_token: string };
      const check = await at('/backend-api/wham/accounts/check', issued.access_token);
      expect(check.status).toBe(200);
      expect(await check.json()).toMatchObject({ accounts: [{ structure: 'personal' }] });
      const turn = await at('/v1internal:streamGenerateContent?alt=sse', issued.access_token, {
        model: 'gemini-test',
        project: 'p',
        request: { contents: [] },
      });
      expect(turn.status).toBe(200);
      expect(await turn.text()).toContain('"usageMetadata":{"promptTokenCount":123');
      expect((await at('/tokeninfo', issued.access_token, {})).status).toBe(200);
      for (const path of ['/backend-api/wham/accounts/check', '/v1internal:loadCodeAssist', '/tokeninfo']) {
        const refused = await at(path, `${CANARY}-not-issued`, path === '/backend-api/wham/accounts/check' ? undefined : {});
        expect([400, 401], path).toContain(refused.status);
      }
    } finally {
      await local.close();
    }
  });
});
