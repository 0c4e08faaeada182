// s2m: what metering model answers costs keyway (issue 63: "s2 on a model-API grant with metering
// on within 5% of the same grant without"). s2's load (kept-alive connections, bounded in count and
// time) as small POSTs to Anthropic's /v1/messages, answered by the bench upstream with a fixed,
// tiny Messages answer carrying `usage`: a JSON body, or (`stream`) an SSE stream of the seven
// events Anthropic sends, one write each. Three bearer grants with the same secret, one host each:
//   none:    model_api: none       — keyway reads nothing of the answer (the yardstick)
//   metered: model_api: anthropic  — every answer through the answer meter, priced, in the ledger
//   budget:  the same, with a large usd budget on the grant — a ledger check per request too
// All in one keyway process, run in turns (bench/ab.ts --scenario=s2m), so machine noise hits
// every side alike. The answers' usage is fixed, so the ledger's totals can be checked exactly.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import type { Route, Tally } from './clients.ts';
import type { Context, LoadRequest } from './scenarios.ts';

export const MODEL_SAN = '*.bench-model.test';
export const MESSAGES_PATH = '/v1/messages';

export type ModelSide = 'none' | 'metered' | 'budget';

/** One grant and host per side: not under bench.test, whose bearer grant would make them ambiguous. */
export const MODEL_GRANTS: Record<ModelSide, { grant: string; host: string; modelApi: 'none' | 'anthropic' }> = {
  none: { grant: 'model-none', host: 'none.bench-model.test', modelApi: 'none' },
  metered: { grant: 'model-metered', host: 'metered.bench-model.test', modelApi: 'anthropic' },
  budget: { grant: 'model-budget', host: 'budget.bench-model.test', modelApi: 'anthropic' },
};

/** What each answer reports: the ledger's totals must be these times the metered answers. */
export const ANSWER_MODEL = 'claude-sonnet-4-5-20250929';
export const ANSWER_USAGE = { input_tokens: 25, output_tokens: 4 };
/** At the shipped price of claude-sonnet-4-5 ($3 in, $15 out per million tokens). */
export const ANSWER_USD = (ANSWER_USAGE.input_tokens * 3 + ANSWER_USAGE.output_tokens * 15) / 1e6;

const ANSWER_JSON = Buffer.from(
  JSON.stringify({
    id: 'msg_bench',
    type: 'message',
    role: 'assistant',
    model: ANSWER_MODEL,
    content: [{ type: 'text', text: 'ok' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { ...ANSWER_USAGE, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  }),
);

const sse = (event: string, data: unknown) => Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

/** Anthropic's stream for a one-word answer, as its API sends it. */
const ANSWER_EVENTS: readonly Buffer[] = [
  sse('message_start', {
    type: 'message_start',
    message: {
      id: 'msg_bench',
      type: 'message',
      role: 'assistant',
      model: ANSWER_MODEL,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: ANSWER_USAGE.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    },
  }),
  sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  sse('ping', { type: 'ping' }),
  sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } }),
  sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
  sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: ANSWER_USAGE.output_tokens },
  }),
  sse('message_stop', { type: 'message_stop' }),
];
const STREAM_BYTES = ANSWER_EVENTS.reduce((n, b) => n + b.length, 0);

/** The most of a Messages request the upstream reads; past it, 413. */
const MAX_REQUEST = 64 * 1024;

/** The upstream's /v1/messages (credential already checked): a JSON answer, or SSE when the request asks to stream. */
export function answerMessages(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_REQUEST) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_REQUEST) return void res.writeHead(413).end();
    let stream: unknown;
    try {
      stream = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: unknown }).stream;
    } catch {
      return void res.writeHead(400).end();
    }
    if (stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(ANSWER_JSON.length) }).end(ANSWER_JSON);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const event of ANSWER_EVENTS) res.write(event);
    res.end();
  });
}

/** A Messages request as the Anthropic SDK sends it for a short prompt. */
const requestBody = (stream: boolean) =>
  JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say ok.' }], ...(stream ? { stream: true } : {}) });

/** One side of s2m: a POST to /v1/messages per request; `sent` counts the answers that came back whole. */
export function messagesLoad(route: Route, ctx: Context, stream: boolean, sent: { answers: number }): LoadRequest {
  const body = requestBody(stream);
  const expected = stream ? STREAM_BYTES : ANSWER_JSON.length;
  return {
    path: MESSAGES_PATH,
    send: async (dispatcher, url) => {
      const res = await request(url, {
        dispatcher,
        method: 'POST',
        headers: { ...route.headers(), 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body,
      });
      if (res.statusCode !== 200) return bad(ctx.tally, `${url}: status ${res.statusCode}`, () => res.body.dump());
      let bytes = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) bytes += chunk.length;
      if (bytes !== expected) return bad(ctx.tally, `${url}: got ${bytes} bytes, expected ${expected}`);
      sent.answers++;
    },
  };
}

async function bad(tally: Tally, what: string, drain?: () => Promise<unknown>): Promise<void> {
  if (what.includes('status')) tally.badStatus++;
  else tally.badBody++;
  tally.first ??= what;
  await drain?.();
}

/** keyway CLI steps that add the three grants (bearer, the bench secret on stdin). */
export function modelGrantSteps(secret: string): Array<{ args: string[]; stdin: string }> {
  return Object.values(MODEL_GRANTS).map((g) => ({
    args: ['grants', 'add', g.grant, '--type', 'bearer', '--domains', g.host, '--model-api', g.modelApi, '--secret-stdin'],
    stdin: secret,
  }));
}

/** The budget side's budget: large enough never to be reached, so each request only pays the check. */
export const MODEL_BUDGETS = [{ grant: MODEL_GRANTS.budget.grant, limit: { usd: 1_000_000 }, per: 'month', over: 'refuse' }];
