// What metering one small model answer costs (issue 63): the proxy runs a meter over every metered
// answer, and the issue asks that s2 with metering stay within 5% of s2 without (docs/perf/latest.md:
// about 50 to 65 µs of keyway CPU per request on these 2 cores, so the budget is about 2.5 µs).
// For each wire format, a small answer shaped as the vendor sends it (and as the stand-ins do) is fed
// to a fresh meter the way a socket delivers it (in one piece, and in 3 pieces), then ended.
// Prints µs per answer (median of rounds). Not a test: figures depend on the machine.
//
//   node bench/meters.ts [--rounds=7] [--answers=20000]
import { answerMeter, type MeterPlan, modelRoute } from '../src/spend/core/meters/index.ts';
import { withIncludeUsage } from '../src/spend/request/include-usage.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(arg('rounds') ?? 7);
const ANSWERS = Number(arg('answers') ?? 20_000);

const sse = (events: Array<[string | undefined, unknown]>) =>
  events.map(([name, data]) => `${name === undefined ? '' : `event: ${name}\n`}data: ${JSON.stringify(data)}\n\n`).join('');
const TEXT = ['The quick brown fox ', 'jumps over the lazy dog.'];

const cases: Array<{ name: string; plan: MeterPlan; type: string; body: string }> = [
  {
    name: 'anthropic JSON',
    plan: { api: 'anthropic', route: 'anthropic-messages', requestModel: null },
    type: 'application/json',
    body: JSON.stringify({
      id: 'msg_01',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4',
      content: [{ type: 'text', text: TEXT.join('') }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 123, cache_creation_input_tokens: 3, cache_read_input_tokens: 7, output_tokens: 45 },
    }),
  },
  {
    name: 'anthropic SSE',
    plan: { api: 'anthropic', route: 'anthropic-messages', requestModel: null },
    type: 'text/event-stream',
    body: sse([
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            id: 'msg_01',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4',
            content: [],
            usage: { input_tokens: 123, cache_creation_input_tokens: 3, cache_read_input_tokens: 7, output_tokens: 1 },
          },
        },
      ],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['ping', { type: 'ping' }],
      ...TEXT.map((text) => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }] as [string, unknown]),
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 45 } }],
      ['message_stop', { type: 'message_stop' }],
    ]),
  },
  {
    name: 'openai chat SSE',
    plan: { api: 'openai', route: 'openai-chat', requestModel: null },
    type: 'text/event-stream',
    body: `${sse([
      [
        undefined,
        {
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'gpt-4o',
          choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
          usage: null,
        },
      ],
      ...TEXT.map(
        (content) =>
          [
            undefined,
            {
              id: 'c1',
              object: 'chat.completion.chunk',
              created: 1,
              model: 'gpt-4o',
              choices: [{ index: 0, delta: { content }, finish_reason: null }],
              usage: null,
            },
          ] as [undefined, unknown],
      ),
      [
        undefined,
        {
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'gpt-4o',
          choices: [],
          usage: { prompt_tokens: 123, completion_tokens: 45, total_tokens: 168, prompt_tokens_details: { cached_tokens: 7 } },
        },
      ],
    ])}data: [DONE]\n\n`,
  },
  {
    name: 'openai responses SSE',
    plan: { api: 'openai', route: 'openai-responses', requestModel: null },
    type: 'text/event-stream',
    body: sse([
      [
        'response.created',
        { type: 'response.created', sequence_number: 0, response: { id: 'r1', model: 'gpt-5', status: 'in_progress', output: [], usage: null } },
      ],
      [
        'response.in_progress',
        { type: 'response.in_progress', sequence_number: 1, response: { id: 'r1', model: 'gpt-5', status: 'in_progress', output: [], usage: null } },
      ],
      [
        'response.output_item.added',
        {
          type: 'response.output_item.added',
          sequence_number: 2,
          output_index: 0,
          item: { id: 'm1', type: 'message', status: 'in_progress', role: 'assistant', content: [] },
        },
      ],
      ...TEXT.map(
        (delta, i) =>
          [
            'response.output_text.delta',
            { type: 'response.output_text.delta', sequence_number: 3 + i, item_id: 'm1', output_index: 0, content_index: 0, delta },
          ] as [string, unknown],
      ),
      [
        'response.output_item.done',
        {
          type: 'response.output_item.done',
          sequence_number: 5,
          output_index: 0,
          item: { id: 'm1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: TEXT.join(''), annotations: [] }] },
        },
      ],
      [
        'response.completed',
        {
          type: 'response.completed',
          sequence_number: 6,
          response: {
            id: 'r1',
            model: 'gpt-5',
            status: 'completed',
            output: [
              { id: 'm1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: TEXT.join(''), annotations: [] }] },
            ],
            usage: {
              input_tokens: 123,
              input_tokens_details: { cached_tokens: 7 },
              output_tokens: 45,
              output_tokens_details: { reasoning_tokens: 5 },
              total_tokens: 168,
            },
          },
        },
      ],
    ]),
  },
  {
    name: 'gemini JSON array',
    plan: { api: 'gemini', route: 'gemini-generate', requestModel: 'gemini-2.5-pro' },
    type: 'application/json',
    body: JSON.stringify(
      TEXT.map((text, i) => ({
        candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }],
        usageMetadata: { promptTokenCount: 123, candidatesTokenCount: i === 0 ? 5 : 40, thoughtsTokenCount: 5, totalTokenCount: 173 },
        modelVersion: 'gemini-2.5-pro',
        responseId: 'r',
      })),
    ),
  },
];

function thirds(bytes: Buffer): Buffer[] {
  const a = Math.floor(bytes.length / 3);
  return [bytes.subarray(0, a), bytes.subarray(a, 2 * a), bytes.subarray(2 * a)];
}

function run(plan: MeterPlan, type: string, pieces: Buffer[]): number {
  const started = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < ANSWERS; i++) {
    const meter = answerMeter(plan, 200, type, { requestBytes: 300 })!;
    for (const piece of pieces) meter.push(piece);
    sink += meter.end().usage?.output_tokens ?? 0;
  }
  if (sink !== ANSWERS * 45) throw new Error(`wrong readings: ${sink}`);
  return Number(process.hrtime.bigint() - started) / 1000 / ANSWERS;
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

console.log(`µs per answer (median of ${ROUNDS} rounds of ${ANSWERS}); s2's budget at 5%: ~2.5 µs`);
for (const c of cases) {
  const bytes = Buffer.from(c.body);
  const whole: number[] = [];
  const split: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    whole.push(run(c.plan, c.type, [bytes]));
    split.push(run(c.plan, c.type, thirds(bytes)));
  }
  console.log(`${c.name.padEnd(22)} ${String(bytes.length).padStart(5)} B   1 piece ${median(whole).toFixed(2)} µs   3 pieces ${median(split).toFixed(2)} µs`);
}

const request = Buffer.from(JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x'.repeat(2000) }], temperature: 0.2 }));
const times: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < ANSWERS; i++) withIncludeUsage(request);
  times.push(Number(process.hrtime.bigint() - started) / 1000 / ANSWERS);
}
console.log(`withIncludeUsage       ${String(request.length).padStart(5)} B   ${median(times).toFixed(2)} µs`);

// The route table runs on every request of a grant, metered or not.
const routeTimes: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const started = process.hrtime.bigint();
  let metered = 0;
  for (let i = 0; i < ANSWERS; i++) if (modelRoute(undefined, 'api.anthropic.com', 'POST', '/v1/messages?beta=true')?.kind === 'metered') metered++;
  if (metered !== ANSWERS) throw new Error('route');
  routeTimes.push(Number(process.hrtime.bigint() - started) / 1000 / ANSWERS);
}
console.log(`modelRoute                     ${median(routeTimes).toFixed(2)} µs`);
