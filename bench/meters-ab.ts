// Metering's per-answer work, this checkout against another, in one process (issue 63): a meter
// over a small answer (made, fed in one piece or three, ended) and the spend ledger's add. The two
// run in alternating batches and each batch is timed in CPU time (process.cpuUsage), so a busy,
// shared machine weighs on both alike; the figure is the median over rounds of µs per answer.
// Not a test: figures depend on the machine. Run as keyway runs (no Maglev):
//
//   node --no-maglev bench/meters-ab.ts --a=/path/to/other/checkout [--rounds=15] [--answers=20000]
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const A = resolve(arg('a') ?? '.');
const ROUNDS = Number(arg('rounds') ?? 15);
const ANSWERS = Number(arg('answers') ?? 20_000);

type Meters = typeof import('../src/spend/core/meters/index.ts');
type Ledger = typeof import('../src/spend/ledger/ledger.ts');
// A checkout from before spend became a room (issue 87) keeps its meters and ledger at the old paths.
const at = (root: string, path: string, before: string) => pathToFileURL(`${root}/src/${existsSync(`${root}/src/${path}`) ? path : before}`).href;
const load = async (root: string) => ({
  meters: (await import(at(root, 'spend/core/meters/index.ts', 'spend/meters/index.ts'))) as Meters,
  ledger: (await import(at(root, 'spend/ledger/ledger.ts', 'app/spend-ledger.ts'))) as Ledger,
});
const sides = { a: await load(A), b: await load(resolve('.')) };

const TEXT = 'The quick brown fox jumps over the lazy dog.';
const anthropicJson = JSON.stringify({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4',
  content: [{ type: 'text', text: TEXT }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 123, cache_creation_input_tokens: 3, cache_read_input_tokens: 7, output_tokens: 45 },
});
const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
const anthropicSse = [
  ev('message_start', {
    type: 'message_start',
    message: { id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4', content: [], usage: { input_tokens: 123, output_tokens: 1 } },
  }),
  ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  ev('ping', { type: 'ping' }),
  ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: TEXT } }),
  ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
  ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 45 } }),
  ev('message_stop', { type: 'message_stop' }),
].join('');
const chatJson = JSON.stringify({
  id: 'c1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o',
  choices: [{ index: 0, message: { role: 'assistant', content: TEXT }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 123, completion_tokens: 45, total_tokens: 168, prompt_tokens_details: { cached_tokens: 7 } },
  service_tier: 'default',
  system_fingerprint: 'fp_1',
});
// Gemini's streamed JSON array (two responses, the last with usage) and a Responses stream: the
// formats whose big events and elements issue 85 reads as they pass (their small ones must not pay).
const geminiArray = JSON.stringify(
  [TEXT.slice(0, 20), TEXT.slice(20)].map((text, i) => ({
    candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0, ...(i === 1 ? { finishReason: 'STOP' } : {}) }],
    ...(i === 1 ? { usageMetadata: { promptTokenCount: 123, candidatesTokenCount: 45, totalTokenCount: 168 } } : {}),
    modelVersion: 'gemini-2.5-flash',
    responseId: 'r1',
  })),
);
const responsesSse = [
  ev('response.created', { type: 'response.created', response: { id: 'resp_1', model: 'gpt-5', status: 'in_progress', output: [], usage: null } }),
  ev('response.output_text.delta', { type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: TEXT }),
  ev('response.output_text.done', { type: 'response.output_text.done', item_id: 'msg_1', output_index: 0, content_index: 0, text: TEXT }),
  ev('response.completed', {
    type: 'response.completed',
    response: {
      id: 'resp_1',
      model: 'gpt-5',
      status: 'completed',
      output: [{ type: 'message', content: [{ type: 'output_text', text: TEXT }] }],
      usage: { input_tokens: 123, output_tokens: 45 },
    },
  }),
].join('');
const GEMINI = { api: 'gemini', route: 'gemini-generate', requestModel: 'gemini-2.5-flash' } as const;
const RESPONSES = { api: 'openai', route: 'openai-responses', requestModel: null } as const;
const ANTHROPIC = { api: 'anthropic', route: 'anthropic-messages', requestModel: null } as const;
const CHAT = { api: 'openai', route: 'openai-chat', requestModel: null } as const;
const thirds = (text: string) => {
  const b = Buffer.from(text);
  const n = Math.ceil(b.length / 3);
  return [b.subarray(0, n), b.subarray(n, 2 * n), b.subarray(2 * n)];
};
const cases = [
  { name: 'anthropic JSON, 1 piece', plan: ANTHROPIC, type: 'application/json', pieces: [Buffer.from(anthropicJson)] },
  { name: 'anthropic JSON, 3 pieces', plan: ANTHROPIC, type: 'application/json', pieces: thirds(anthropicJson) },
  { name: 'openai chat JSON, 1 piece', plan: CHAT, type: 'application/json', pieces: [Buffer.from(chatJson)] },
  { name: 'anthropic SSE, 1 piece', plan: ANTHROPIC, type: 'text/event-stream', pieces: [Buffer.from(anthropicSse)] },
  { name: 'anthropic SSE, 3 pieces', plan: ANTHROPIC, type: 'text/event-stream', pieces: thirds(anthropicSse) },
  { name: 'openai responses SSE, 1 piece', plan: RESPONSES, type: 'text/event-stream', pieces: [Buffer.from(responsesSse)] },
  { name: 'gemini JSON array, 1 piece', plan: GEMINI, type: 'application/json', pieces: [Buffer.from(geminiArray)] },
  { name: 'gemini JSON array, 3 pieces', plan: GEMINI, type: 'application/json', pieces: thirds(geminiArray) },
];

let sink = 0;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function meterBatch(side: Meters, c: (typeof cases)[number]): number {
  const t0 = cpuUs();
  for (let i = 0; i < ANSWERS; i++) {
    const meter = side.answerMeter(c.plan, 200, c.type, { requestBytes: 400 })!;
    for (const piece of c.pieces) meter.push(piece);
    sink += meter.end().usage?.output_tokens ?? 0;
  }
  return (cpuUs() - t0) / ANSWERS;
}

const store = { get: () => undefined, update: async () => undefined } as never;
const ledgers = { a: new sides.a.ledger.SpendLedger({ store, budgets: () => [] }), b: new sides.b.ledger.SpendLedger({ store, budgets: () => [] }) };
const entry = {
  agent: 'coder',
  grant: 'anthropic',
  end_user: null,
  at: new Date(),
  reading: {
    usage: { model: 'claude-sonnet-4', input_tokens: 133, output_tokens: 45, cached_input_tokens: 7, cache_write_tokens: 3 },
    basis: 'reported' as const,
  },
  cost_usd: 0.0012,
};
function ledgerBatch(ledger: (typeof ledgers)['a']): number {
  const t0 = cpuUs();
  for (let i = 0; i < ANSWERS; i++) ledger.add(entry as never);
  return (cpuUs() - t0) / ANSWERS;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const rows: Array<{ name: string; run: (side: 'a' | 'b') => number }> = [
  ...cases.map((c) => ({ name: c.name, run: (side: 'a' | 'b') => meterBatch(sides[side].meters, c) })),
  { name: 'ledger add (no budget)', run: (side: 'a' | 'b') => ledgerBatch(ledgers[side]) },
];
console.log(
  `CPU µs per answer, median of ${ROUNDS} rounds of ${ANSWERS} (A = ${A}, B = this checkout); load ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
for (const row of rows) {
  const a: number[] = [];
  const b: number[] = [];
  // Warm both (keyway's path is optimised only after some thousands of calls without Maglev).
  row.run('a');
  row.run('b');
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first.
    if (r % 2 === 0) {
      a.push(row.run('a'));
      b.push(row.run('b'));
    } else {
      b.push(row.run('b'));
      a.push(row.run('a'));
    }
  }
  const ratios = a.map((x, i) => b[i]! / x);
  console.log(`${row.name.padEnd(28)} A ${median(a).toFixed(2)}  B ${median(b).toFixed(2)}  B/A ${median(ratios).toFixed(3)}`);
}
await Promise.all([ledgers.a.close(), ledgers.b.close()]).catch(() => undefined);
if (sink === 0) console.log('');
