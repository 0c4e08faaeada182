// Spend attacks (issue 63): an agent under a model budget tries to get answers from a vendor that
// bills while keyway counts less, through the real proxy with real clients. The vendor here is a
// lenient one (lenient-vendor.ts: loose paths, method overrides, Google's system parameters,
// compression): `billed` is what it would charge. Every attempt must end one of two ways: keyway
// refuses it (nothing billed), or keyway counts at least what was billed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type Billed, lenientVendor } from '../helpers/model-standins/lenient-vendor.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-attack-key`;
const AGENT_KEY = 'attack-agent-key-0123456789';
const HOSTS = ['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com'] as const;
type Host = (typeof HOSTS)[number];

interface Attempt {
  host: Host;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Outcome {
  status: number;
  keywayError: string | undefined;
  text: string;
}

describe('spend attacks: every answer the vendor bills is counted, or refused', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  const billed: Billed[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [lenientVendor(billed)] });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { bot: { key: 'env:AGENT_KEY' }, free: { key: 'env:AGENT_KEY' } },
        // A budget far from its limit: each attempt is judged by what is counted, not refused for being over.
        budgets: [{ agent: 'bot', limit: { tokens: 1_000_000_000 }, per: 'day' }],
      },
    });
    bot = new ProxyAgent({ uri: `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await bot?.close();
    await proxy?.stop();
    await standin?.close();
  });

  /** Sends one request with its target exactly as written (undici's dispatcher API does not normalise it). */
  async function send(attempt: Attempt): Promise<Outcome> {
    const res = await bot.request({
      origin: `https://${attempt.host}:${standin.port}`,
      path: attempt.path,
      method: (attempt.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', ...attempt.headers },
      body: attempt.body,
    });
    const text = await res.body.text();
    outputs.push(text);
    const error = res.headers['x-keyway-error'];
    return { status: res.statusCode, keywayError: typeof error === 'string' ? error : undefined, text };
  }

  /** Tokens keyway counted on the audit lines written since `from` (an unknown usage counts none). */
  const countedSince = (from: number) =>
    proxy
      .auditLines()
      .slice(from)
      .reduce((sum, l) => {
        const usage = l['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
        return sum + (usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0);
      }, 0);

  /** Runs `attempt`; asserts it was refused with nothing billed, or counted at least as billed. */
  async function judged(attempt: Attempt): Promise<'refused' | 'counted'> {
    const lines = proxy.auditLines().length;
    const before = billed.length;
    const outcome = await send(attempt);
    // One audit line per request, written as the exchange closes.
    await waitFor(() => (proxy.auditLines().length > lines ? true : undefined), `the audit line of ${attempt.method ?? 'POST'} ${attempt.path}`);
    const vendorBilled = billed.slice(before).reduce((sum, b) => sum + b.tokens, 0);
    if (outcome.keywayError !== undefined) {
      expect(vendorBilled, `${attempt.path}: refused by keyway (${outcome.keywayError}), so nothing reached the vendor`).toBe(0);
      return 'refused';
    }
    expect(countedSince(lines), `${attempt.path} (${outcome.status}): counted against billed ${vendorBilled}`).toBeGreaterThanOrEqual(vendorBilled);
    return 'counted';
  }

  const messages = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ model: 'claude-test-1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra });
  const chat = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }], ...extra });
  const contents = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });

  it('the plain routes are counted (the stand-in bills what keyway reads)', async () => {
    expect(await judged({ host: 'api.anthropic.com', path: '/v1/messages', body: messages() })).toBe('counted');
    expect(await judged({ host: 'api.anthropic.com', path: '/v1/messages', body: messages({ stream: true }) })).toBe('counted');
    expect(await judged({ host: 'api.openai.com', path: '/v1/chat/completions', body: chat({ stream: true }) })).toBe('counted');
    expect(await judged({ host: 'generativelanguage.googleapis.com', path: '/v1beta/models/gemini-test-1:generateContent', body: contents })).toBe('counted');
    expect(billed.length).toBe(4);
  });

  it.each([
    '/v1/Messages',
    '/V1/messages',
    '/v1/messages/',
    '/v1//messages',
    '//v1/messages',
    '/v1/./messages',
    '/v1/x/../messages',
    '/v1/%6Dessages',
    '/v1/%6dessages',
    '/v1%2Fmessages',
    '/v1/messages;x=1',
    '/v1/messages;',
    '/v1;x/messages',
    '/v1/messages?beta=true',
    '/v1/messages?',
    '/v1/messages#frag',
    '/v1/messages%3F',
    '/v1/messages%20',
    '/v1/messages.',
    '/v1/messages..',
    '/v1/messages.json',
  ])('Anthropic path %s: counted or refused', async (path) => {
    await judged({ host: 'api.anthropic.com', path, body: messages() });
  });

  it.each(['/v1/Chat/Completions', '/v1/chat/completions/', '/v1/chat%2Fcompletions', '/v1/chat/completions;a', '/v1/chat//completions'])(
    'OpenAI path %s, streamed: counted or refused',
    async (path) => {
      await judged({ host: 'api.openai.com', path, body: chat({ stream: true }) });
    },
  );

  it.each([
    '/v1beta/models/gemini-test-1:GenerateContent',
    '/v1beta/models/gemini-test-1:generateContent/',
    '/v1beta/models/gemini-test-1%3AgenerateContent',
    '/v1beta/models%2Fgemini-test-1:generateContent',
    '/v1beta/models/gemini-test-1:generateContent;x',
  ])('Gemini path %s: counted or refused', async (path) => {
    await judged({ host: 'generativelanguage.googleapis.com', path, body: contents });
  });

  it.each(['GET', 'PUT', 'PATCH', 'DELETE'])('%s with X-HTTP-Method-Override: POST is counted or refused', async (method) => {
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', method, headers: { 'x-http-method-override': 'POST' }, body: messages() });
    await judged({
      host: 'generativelanguage.googleapis.com',
      path: '/v1beta/models/gemini-test-1:generateContent',
      method,
      headers: { 'x-http-method-override': 'POST' },
      body: contents,
    });
  });

  it('a free read that names a model call in X-Original-URL (and a POST override) is counted or refused', async () => {
    await judged({
      host: 'api.anthropic.com',
      path: '/v1/models',
      method: 'GET',
      headers: { 'x-original-url': '/v1/messages', 'x-http-method-override': 'POST' },
      body: messages(),
    });
  });

  it('a Responses request with background set (answered later, read with free GETs) is refused under a budget; a foreground one is counted', async () => {
    const responses = (extra: Record<string, unknown>) => JSON.stringify({ model: 'gpt-test-1', input: 'hi', ...extra });
    for (const background of [true, 'true', 1]) {
      const outcome = await send({ host: 'api.openai.com', path: '/v1/responses', body: responses({ background }) });
      expect(outcome.keywayError, `background: ${JSON.stringify(background)}`).toBe('budget_unmeterable');
      expect(outcome.text).toContain('background');
    }
    // Named twice, whatever the last one says.
    const twice = await send({
      host: 'api.openai.com',
      path: '/v1/responses',
      body: '{"model":"gpt-test-1","input":"hi","background":true,"background":false}',
    });
    // Refused by the strict read of the body (stage model-body), before the `background` check.
    expect(twice.keywayError).toBe('budget_unmeterable');
    expect(await judged({ host: 'api.openai.com', path: '/v1/responses', body: responses({ background: false }) })).toBe('counted');
    expect(await judged({ host: 'api.openai.com', path: '/v1/responses', body: responses({}) })).toBe('counted');
  });

  it('with no budget, what cannot be metered still goes (unmetered, flagged unknown)', async () => {
    const free = new ProxyAgent({ uri: `http://free:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const lines = proxy.auditLines().length;
      const res = await free.request({
        origin: `https://api.openai.com:${standin.port}`,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(chat({ stream: true })),
      });
      outputs.push(await res.body.text());
      expect(res.statusCode).toBe(200);
      const line = await waitFor(
        () =>
          proxy
            .auditLines()
            .slice(lines)
            .find((l) => l['agent'] === 'free'),
        'the line',
      );
      expect(line['usage']).toMatchObject({ unknown: true });
    } finally {
      await free.close();
    }
  });

  it.each(['gzip', 'br', 'deflate', 'gzip, br, deflate, zstd', 'identity;q=0, gzip'])('an answer compressed as asked (%s) is counted', async (coding) => {
    const headers = { 'accept-encoding': coding };
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', headers, body: messages() });
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', headers, body: messages({ stream: true }) });
    await judged({ host: 'api.openai.com', path: '/v1/chat/completions', headers, body: chat({ stream: true }) });
    await judged({ host: 'generativelanguage.googleapis.com', path: '/v1beta/models/gemini-test-1:streamGenerateContent?alt=sse', headers, body: contents });
  });

  it.each([
    '?alt=json',
    '?alt=sse',
    '?alt=proto',
    '?$alt=proto',
    '?alt=sse&alt=proto',
    '?alt=media',
    '?fields=candidates',
    '?$fields=candidates',
    '?fields=candidates&alt=sse',
    '?fields=*',
    '?alt=json&alt=json',
    '?callback=f',
  ])('Gemini streamGenerateContent%s: counted or refused', async (query) => {
    await judged({ host: 'generativelanguage.googleapis.com', path: `/v1beta/models/gemini-test-1:streamGenerateContent${query}`, body: contents });
  });

  it('Gemini with an X-Goog-FieldMask that leaves usage out: counted or refused', async () => {
    await judged({
      host: 'generativelanguage.googleapis.com',
      path: '/v1beta/models/gemini-test-1:generateContent',
      headers: { 'x-goog-fieldmask': 'candidates' },
      body: contents,
    });
  });

  it.each<[string, string | Buffer, Record<string, string>?]>([
    ['stream as a string', chat({ stream: 'true' })],
    ['include_usage false', chat({ stream: true, stream_options: { include_usage: false } })],
    ['duplicate stream keys', '{"model":"gpt-test-1","messages":[],"stream":false,"stream":true}'],
    ['duplicate stream keys, the last false', '{"model":"gpt-test-1","messages":[],"stream":true,"stream":false}'],
    ['stream as a number', chat({ stream: 1 })],
    [
      'include_usage twice, the first false',
      '{"model":"gpt-test-1","messages":[],"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}',
    ],
    ['a BOM', `\uFEFF${chat({ stream: true })}`],
    ['a gzipped body', gzipSync(chat({ stream: true })), { 'content-encoding': 'gzip' }],
    ['a body over the hold limit', chat({ stream: true, pad: 'x'.repeat(1024 * 1024 + 10) })],
  ])('streamed OpenAI chat with %s: counted or refused', async (_what, body, headers) => {
    await judged({ host: 'api.openai.com', path: '/v1/chat/completions', body, ...(headers === undefined ? {} : { headers }) });
  });

  it('an embeddings answer over 8 MiB (usage at its end) is counted', async () => {
    const input = Array.from({ length: 200 }, (_, i) => `text ${i}`);
    await judged({ host: 'api.openai.com', path: '/v1/embeddings', body: JSON.stringify({ model: 'text-embedding-3-large', input }) });
  });

  it('over HTTP/2 (curl --http2), an override and a path outside the API space are counted or refused', async () => {
    for (const [path, extra] of [
      ['/v1/messages', []],
      ['/v1;x/messages', []],
      ['/v1/messages', ['-X', 'GET', '-H', 'x-http-method-override: POST']],
    ] as const) {
      const lines = proxy.auditLines().length;
      const before = billed.length;
      const run = await curl(proxy, standin.port, `https://api.anthropic.com:${standin.port}${path}`, ['--http2', '-d', messages(), ...extra]);
      outputs.push(run.stdout, run.stderr);
      expect(run.stdout).toMatch(/^HTTP\/2 /m);
      await waitFor(() => (proxy.auditLines().length > lines ? true : undefined), `the audit line of ${path}`);
      const vendorBilled = billed.slice(before).reduce((sum, b) => sum + b.tokens, 0);
      if (/x-keyway-error/i.test(run.stdout)) expect(vendorBilled).toBe(0);
      else expect(countedSince(lines), `${path} over HTTP/2`).toBeGreaterThanOrEqual(vendorBilled);
    }
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});

/** curl through keyway as agent bot, in a clean environment, trusting keyway's CA only; -i so the head is in stdout. */
function curl(proxy: TestProxy, port: number, url: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const host = new URL(url).hostname;
  return new Promise((resolve) => {
    execFile(
      'curl',
      [
        '-sS',
        '-i',
        '--proxy',
        `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`,
        '--cacert',
        proxy.caPath,
        '--resolve',
        `${host}:${port}:127.0.0.1`,
        '-H',
        'content-type: application/json',
        ...args,
        url,
      ],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: proxy.home } },
      (_err, stdout, stderr) => resolve({ stdout, stderr }),
    );
  });
}
