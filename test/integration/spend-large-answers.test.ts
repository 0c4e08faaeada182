// Issue 85, "no usage lost to size", on the real request path: loopback stand-ins bill answers
// whose final event is far past the meters' 8 MiB bound, and the official SDKs (and fetch, for
// Gemini's JSON-array stream) call them through keyway. A Responses stream with three image
// results ends with a response.completed that repeats them (tens of MiB); a Gemini image answer
// holds the image inline in its last response, whose usage is the last of a running count (the
// earlier responses carry smaller ones). Each answer's audit line must carry what the stand-in
// billed, to the token, and no real key may show in any output.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GoogleGenAI } from '@google/genai';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchVia } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { geminiHandler } from '../helpers/model-standins/gemini.ts';
import { openaiHandler } from '../helpers/model-standins/openai.ts';
import type { Usage } from '../helpers/model-standins/replies.ts';
import { type StandinServer, sseEvent, startSse, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-large-answer-key`;
const AGENT_KEY = 'large-answer-agent-key-0123456789';
const OPENAI = 'api.openai.com';
const GEMINI = 'generativelanguage.googleapis.com';
const MIB = 1024 * 1024;
/** One image's base64: three of them make a response.completed of 12 MiB; one a Gemini answer of 10 MiB. */
const IMAGE = Buffer.alloc(3 * MIB, 'png?\u00ff').toString('base64');
const GEMINI_IMAGE = `${IMAGE}${IMAGE.slice(0, 6 * MIB)}`;
const UNREADABLE_MODEL = 'gpt-image-unreadable';

describe('answers past 8 MiB through keyway: the usage counted is the usage billed', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  /** What the stand-ins billed, in keyway's meaning, one per answer in order. */
  const billed: Array<{ input: number; output: number; cached: number }> = [];

  const usage = (): { usage: Usage } => {
    const u: Usage = { input: randomInt(50, 5000), output: randomInt(8_000, 20_000), cacheRead: randomInt(1, 40), reasoning: randomInt(0, 50) };
    billed.push({ input: u.input, output: u.output, cached: u.cacheRead ?? 0 });
    return { usage: u };
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        // A vendor whose last event is past 8 MiB and whose usage keyway cannot read (over 64 KiB):
        // it must be counted unknown (flagged), never as no usage.
        (req, res) => {
          if (req.path !== '/v1/responses' || (req.json as { model?: string } | undefined)?.model !== UNREADABLE_MODEL) return false;
          if (req.headers.authorization !== `Bearer ${KEY}`) return false; // the openai stand-in refuses it
          startSse(res);
          res.write(sseEvent({ type: 'response.created', response: { model: UNREADABLE_MODEL, usage: null } }, 'response.created'));
          const usage = { input_tokens: 10, output_tokens: 9_000, notes: 'n'.repeat(70 * 1024) };
          const output = [1, 2, 3].map((n) => ({ type: 'image_generation_call', id: `ig_${n}`, result: IMAGE }));
          res.end(sseEvent({ type: 'response.completed', response: { model: UNREADABLE_MODEL, output, usage } }, 'response.completed'));
          return true;
        },
        openaiHandler({
          host: OPENAI,
          keys: [KEY],
          reply: usage,
          items: () => [1, 2, 3].map((n) => ({ type: 'image_generation_call', id: `ig_${n}`, status: 'completed', result: IMAGE })),
        }),
        geminiHandler({
          host: GEMINI,
          keys: [KEY],
          reply: () => ({ text: 'Here is your picture.', ...usage() }),
          image: () => GEMINI_IMAGE,
          runningUsage: true,
        }),
      ],
    });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { [OPENAI]: '127.0.0.1', [GEMINI]: '127.0.0.1' } },
        grants: {
          openai: { type: 'bearer', domains: [`${OPENAI}:${standin.port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`${GEMINI}:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { coder: { key: 'env:AGENT_KEY' } },
      },
    });
    agent = new ProxyAgent({ uri: `http://coder:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await standin?.close();
  });

  const viaKeyway: typeof fetch = (input, init) => fetchVia(agent)(input, init);
  const base = (host: string) => `https://${host}:${standin.port}`;

  /** The audit line of the next metered answer (the `n`th), once written. */
  async function usageLine(n: number): Promise<Record<string, unknown>> {
    const metered = () => proxy.auditLines().filter((l) => l['usage'] !== undefined);
    await waitFor(() => metered().length >= n || undefined, `metered audit line ${n}`, 20_000);
    return metered()[n - 1]!['usage'] as Record<string, unknown>;
  }

  /** The usage keyway counted equals the billed one: reported, not partial or unknown. */
  async function expectBilled(n: number, model: string): Promise<void> {
    const line = await usageLine(n);
    const want = billed[n - 1]!;
    expect(line).toEqual({ model, input_tokens: want.input, output_tokens: want.output, cached_input_tokens: want.cached });
  }

  // fetch, not the OpenAI SDK: the SDK's SSE decoder takes about half a minute per 6 MiB event
  // (it re-scans the line it is building on every chunk), so tens of MiB would not finish.
  it('a Responses stream with three image results (fetch): its response.completed of 12 MiB gives the usage', async () => {
    const res = await viaKeyway(`${base(OPENAI)}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
      body: JSON.stringify({ model: 'gpt-image-test', input: 'three pictures', stream: true, tools: [{ type: 'image_generation' }] }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const last = text.trimEnd().split('\n\n').at(-1)!;
    expect(last.startsWith('event: response.completed\ndata: ')).toBe(true);
    expect(last.length).toBeGreaterThan(12 * MIB);
    // The client got the whole event: three images, the usage billed.
    const completed = JSON.parse(last.slice(last.indexOf('data: ') + 6)) as { response: { output: unknown[]; usage: { output_tokens: number } } };
    expect(completed.response.output).toHaveLength(3);
    expect(completed.response.usage.output_tokens).toBe(billed[0]!.output);
    await expectBilled(1, 'gpt-image-test');
  });

  it("a Gemini image answer (@google/genai), whole and streamed as SSE: the stream's last usage, not its first", async () => {
    const gemini = new GoogleGenAI({ apiKey: 'keyway-placeholder', httpOptions: { baseUrl: base(GEMINI) } });
    // @google/genai takes no fetch: it uses the global one, pointed at keyway for these calls only.
    const saved = globalThis.fetch;
    globalThis.fetch = viaKeyway;
    try {
      const whole = await gemini.models.generateContent({ model: 'gemini-image-test', contents: 'a picture' });
      expect(whole.candidates?.[0]?.content?.parts?.[1]?.inlineData?.data?.length).toBe(GEMINI_IMAGE.length);
      await expectBilled(2, 'gemini-image-test');
      const seen: number[] = [];
      for await (const chunk of await gemini.models.generateContentStream({ model: 'gemini-image-test', contents: 'a picture' }))
        seen.push(chunk.usageMetadata?.candidatesTokenCount ?? 0);
      // The stand-in sent a smaller running usage first, as Gemini does.
      expect(seen.length).toBe(2);
      expect(seen[0]).toBe(1);
      await expectBilled(3, 'gemini-image-test');
    } finally {
      globalThis.fetch = saved;
    }
  });

  it("a Gemini image answer streamed as a JSON array (fetch, no alt=sse): the last element's usage", async () => {
    const res = await viaKeyway(`${base(GEMINI)}/v1beta/models/gemini-image-test:streamGenerateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': 'keyway-placeholder' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'a picture' }] }] }),
    });
    expect(res.status).toBe(200);
    const elements = (await res.json()) as Array<{ usageMetadata?: { candidatesTokenCount: number } }>;
    expect(elements).toHaveLength(2);
    expect(elements[0]!.usageMetadata?.candidatesTokenCount).toBe(1);
    await expectBilled(4, 'gemini-image-test');
  });

  it('a last event past 8 MiB whose usage cannot be read (over 64 KiB) is unknown, flagged, not zero', async () => {
    const res = await viaKeyway(`${base(OPENAI)}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
      body: JSON.stringify({ model: UNREADABLE_MODEL, input: 'three pictures', stream: true }),
    });
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeGreaterThan(12 * MIB);
    const line = await usageLine(5);
    expect(line['unknown']).toBe(true);
    expect(line['output_tokens']).toBeUndefined();
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(everything.length).toBeGreaterThan(0);
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});
