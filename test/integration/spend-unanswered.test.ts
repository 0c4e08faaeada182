// A model request the agent leaves after it went up and before the answer's head (issues 63, 85):
// the upstream had the prompt and may bill it (and the answer it goes on writing), so it is counted
// at its floor: a quarter of the request body's bytes as input tokens, its output cap
// (`max_tokens`) as output, priced at the model its body names, `partial: true`, on the audit line
// and in the ledger (`keyway spend`). A request keyway
// answers itself (the upstream unreachable: 502) counts nothing. No real key in any output.
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type StandinRequest, type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-model-key`;
const AGENT_KEY = 'spend-agent-key-0123456789';
const PRICE = { input_per_mtok: 3, output_per_mtok: 15 };

/** A port nothing listens on: taken, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a model request the agent leaves before the answer', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  const held: ServerResponse[] = [];
  const received: StandinRequest[] = [];
  const outputs: string[] = [];
  let dead = 0;

  beforeAll(async () => {
    // Reads the request whole, then never answers (until the test ends): the head is delayed past the client's patience.
    standin = await startStandinServer({
      handlers: [
        (req, res) => {
          received.push(req);
          held.push(res);
          return true;
        },
      ],
    });
    dead = await closedPort();
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1', 'api.openai.com': '127.0.0.1' } },
        grants: {
          anthropic: { type: 'bearer', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY' },
          openai: { type: 'bearer', domains: [`api.openai.com:${dead}`], secret: 'env:MODEL_KEY' },
        },
        agents: { coder: { key: 'env:AGENT_KEY' } },
        pricing: { 'claude-test*': PRICE, 'gpt-test*': PRICE },
      },
    });
    agent = new ProxyAgent({ uri: `http://coder:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    await agent?.close();
    await proxy?.stop();
    await standin?.close();
  });

  it('counts the input estimate as partial once the request went up; nothing when keyway answered itself', async () => {
    const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 100, messages: [{ role: 'user', content: 'q'.repeat(1001) }] });
    const controller = new AbortController();
    const answer = undiciFetch(`https://api.anthropic.com:${standin.port}/v1/messages`, {
      method: 'POST',
      dispatcher: agent,
      signal: controller.signal,
      headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
      body,
    }).catch((err: unknown) => err);
    await waitFor(() => (received.length > 0 ? true : undefined), 'the stand-in to have the request', 10_000);
    // The upstream had it, with the real key (not the placeholder).
    expect(received[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(received[0]!.body.toString()).toBe(body);
    controller.abort();
    expect(await answer).toBeInstanceOf(Error);

    const line = await waitFor(() => proxy.auditLines().find((l) => l['usage'] !== undefined), 'the left request’s audit line', 10_000);
    const inputTokens = Math.ceil(Buffer.byteLength(body) / 4);
    // The model is named only in the request's body, read as it went up (stage model-body): priced.
    expect(line['usage']).toEqual({ model: 'claude-test-1', input_tokens: inputTokens, output_tokens: 100, partial: true });
    expect(line['unpriced']).toBeUndefined();
    expect(line['cost_usd']).toBeCloseTo((inputTokens * 3 + 100 * 15) / 1e6, 9);
    expect(line['status']).toBeNull();

    // The unreachable upstream: keyway's own 502 reaches the agent whole, and nothing is counted.
    const unreachable = await undiciFetch(`https://api.openai.com:${dead}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
      body: JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(unreachable.status).toBe(502);
    await unreachable.text();

    const spend = await waitForAsync(
      async () => {
        const run = await proxy.cli(['spend', '--json']);
        outputs.push(run.stdout, run.stderr);
        if (run.code !== 0) return undefined;
        const totals = (JSON.parse(run.stdout) as { totals: { requests: number } }).totals;
        return totals.requests >= 1 ? totals : undefined;
      },
      'keyway spend to count the left request',
      15_000,
    );
    expect(spend).toMatchObject({ requests: 1, partial: 1, unpriced: 0, input_tokens: inputTokens, output_tokens: 100 });
    const lines = proxy.auditLines();
    expect(lines.filter((l) => l['usage'] !== undefined)).toHaveLength(1);
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});
