// Metered traffic through a real keyway for crash tests (issue 85): a few client loops, each sending
// Messages requests one after another (streamed and whole, alternately) through the proxy to the
// Anthropic stand-in, counting the answers they received whole. A request that fails (the process
// serving it killed) is not received; the loop goes on with a new connection. A loop ends when told
// to, or after its bounded count of requests.
import { ProxyAgent, request } from 'undici';
import { expect } from 'vitest';
import { runCli } from './keyway.ts';

/** Every answer the stand-in bills: 100 input and 50 output tokens. */
export const CRASH_USAGE = { input: 100, output: 50 };
/** Priced in the shipped table: $3 / $15 per MTok, so each answer is $0.00105. */
export const CRASH_MODEL = 'claude-sonnet-4-5';
export const CRASH_COST = (CRASH_USAGE.input * 3 + CRASH_USAGE.output * 15) / 1e6;

export interface Traffic {
  /** Answers the clients received whole: a 200 whose body ended as the vendor ends one. */
  readonly received: () => number;
  /** Every loop finished (told to stop, failed, or done). */
  readonly done: Promise<void>;
  stop(): void;
}

export interface TrafficOptions {
  /** The proxy's port, with `bot:KEY@` credentials in `user`. */
  proxyUrl: string;
  ca: string;
  /** The stand-in's port (api.anthropic.com is mapped to it). */
  vendorPort: number;
  loops: number;
  /** Requests per loop at most: the loops end by themselves. */
  perLoop: number;
}

/** One request; true when its answer arrived whole. Throws when the proxy goes away. */
async function ask(dispatcher: ProxyAgent, vendorPort: number, stream: boolean): Promise<boolean> {
  const res = await request(`https://api.anthropic.com:${vendorPort}/v1/messages`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: CRASH_MODEL, max_tokens: 50, stream, messages: [{ role: 'user', content: 'count me' }] }),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) return false;
  // Whole: the stream's last event, or a JSON answer that parses with its usage.
  if (stream) return text.includes('event: message_stop');
  return (JSON.parse(text) as { usage?: unknown }).usage !== undefined;
}

export function meteredTraffic(options: TrafficOptions): Traffic {
  let received = 0;
  let stopped = false;
  const loop = async (index: number): Promise<void> => {
    let dispatcher = new ProxyAgent({ uri: options.proxyUrl, requestTls: { ca: options.ca } });
    try {
      for (let i = 0; i < options.perLoop && !stopped; i++) {
        try {
          if (await ask(dispatcher, options.vendorPort, (i + index) % 2 === 0)) received++;
        } catch {
          // The process serving this connection was killed under the request: not received. A new
          // connection (to a worker still there, or to nothing) after a moment.
          await dispatcher.close().catch(() => undefined);
          dispatcher = new ProxyAgent({ uri: options.proxyUrl, requestTls: { ca: options.ca } });
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  };
  const done = Promise.all(Array.from({ length: options.loops }, (_, i) => loop(i))).then(() => undefined);
  return {
    received: () => received,
    done,
    stop: () => {
      stopped = true;
    },
  };
}

/** Waits until `traffic` has received `count` answers in all (bounded: `limitMs`). */
export async function receivedAtLeast(traffic: Traffic, count: number, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (traffic.received() < count) {
    if (Date.now() > deadline) throw new Error(`only ${traffic.received()} of ${count} answers received in ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Totals {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  partial: number;
}

export interface SpendRead {
  totals: Totals;
  budgets: Array<{ name: string; used: number; unit: string }>;
}

export async function readSpend(home: string, env: Record<string, string>): Promise<SpendRead> {
  const run = await runCli(['spend', '--json', '--home', home], env);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as SpendRead;
}

/**
 * What `keyway spend --json` must say after the kills: every answer a client received counted,
 * nothing the vendor did not bill, each a whole answer (tokens and dollars follow the count), and the
 * budgets (budgets[0] in USD, budgets[1] in tokens) the same.
 */
export function expectCounted(spend: SpendRead, received: number, billed: number): void {
  const { totals } = spend;
  expect(totals.requests, `counted ${totals.requests}, received ${received}, billed ${billed}`).toBeGreaterThanOrEqual(received);
  expect(totals.requests).toBeLessThanOrEqual(billed);
  expect(totals.partial).toBe(0);
  expect(totals.input_tokens).toBe(totals.requests * CRASH_USAGE.input);
  expect(totals.output_tokens).toBe(totals.requests * CRASH_USAGE.output);
  expect(Math.abs(totals.cost_usd - totals.requests * CRASH_COST)).toBeLessThan(1e-9);
  const usd = spend.budgets.find((b) => b.name === 'budgets[0]')!;
  const tokens = spend.budgets.find((b) => b.name === 'budgets[1]')!;
  expect(Math.abs(usd.used - totals.requests * CRASH_COST)).toBeLessThan(1e-9);
  expect(tokens.used).toBe(totals.requests * (CRASH_USAGE.input + CRASH_USAGE.output));
}
