import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { ModelExchange, SentBodyReader, type SpendRecorder } from '../../src/proxy/stages/model-exchange.ts';
import type { AnswerReader, AnswerTap } from '../../src/proxy/stages/hooks.ts';
import { ANSWER_TAPS, openAnswerTaps, runBodySent, runCloseStages, runRequestSent } from '../../src/proxy/stages/index.ts';
import type { StagedRequest } from '../../src/proxy/stages/request.ts';
import type { UpstreamAnswer } from '../../src/proxy/stages/response.ts';
import type { SpendEntry } from '../../src/spend/core/ledger.ts';
import type { MeterPlan } from '../../src/spend/core/meters/index.ts';
import { RequestJsonReader } from '../../src/spend/request/request-json.ts';
import type { UsageReading } from '../../src/spend/core/usage.ts';

// The phases after the head and body stages (stages/hooks.ts), run by the driver from the lists of
// stages/index.ts: the request sent, the answer's taps, the exchange's close. These run the real
// lists on a request made of the parts they read, and show what each phase hears, in what order.

const plan: MeterPlan = { api: 'anthropic', route: 'anthropic-messages', requestModel: null };
const scope = { agent: 'a', grant: 'g', end_user: null };
const NOW = new Date(0);

/** The spend recorder's calls, in order, and what `settled` returns (the durable count the end waits for). */
function recorder(calls: string[], settled?: Promise<void>): SpendRecorder & { added: SpendEntry[] } {
  const added: SpendEntry[] = [];
  return {
    added,
    costOf: (r: UsageReading) => (r.usage === undefined ? null : 0.5),
    modelName: (_agent: string | null, model: string | null) => model,
    add: (e: SpendEntry) => {
      calls.push('spend');
      added.push(e);
    },
    settled: () => settled,
  };
}

/** A request as the close stages and hooks read it: its model and quota, its draft, its connection's views. */
function request(calls: string[], parts: { model?: ModelExchange; quota?: number; settled?: Promise<void> } = {}) {
  const event = { status: 200 } as AuditEvent;
  const spend = recorder(calls, parts.settled);
  const runtime = {
    now: () => NOW,
    spend,
    quotas: { addBytes: (_scopes: unknown, bytes: number, at: Date) => calls.push(`quota ${bytes} ${at.toISOString()}`) },
    records: 'records',
  };
  const committed: AuditEvent[] = [];
  const staged = {
    model: parts.model,
    byteQuota: parts.quota === undefined ? undefined : { scopes: [{ kind: 'agent', agent: 'a', grant: null }], sent: parts.quota },
    draft: {
      event,
      commit(records: unknown) {
        expect(records).toBe(runtime);
        calls.push('commit');
        committed.push(structuredClone(event));
      },
    },
    conn: { decisions: runtime, spending: runtime, records: runtime },
  };
  return { staged: staged as unknown as StagedRequest, event, spend, committed };
}

const usage = (model: string): UsageReading => ({ usage: { model, input_tokens: 25, output_tokens: 4 }, basis: 'reported' });

function metered(reading: UsageReading, abandoned: UsageReading = reading): ModelExchange {
  const model = new ModelExchange(plan, scope, undefined);
  model.meter = { push: () => undefined, end: () => reading, abandon: () => abandoned };
  return model;
}

describe('the close stages', () => {
  it('count the bytes quota, then the spend onto the line, then write the line: in that order, once', () => {
    const calls: string[] = [];
    const { staged, committed, spend } = request(calls, { model: metered(usage('claude-x')), quota: 10 });
    runCloseStages(staged, { answerCompleted: true, relayed: 5 });
    // What went up (10) and what came back (5), at the runtime's clock.
    expect(calls).toEqual(['quota 15 1970-01-01T00:00:00.000Z', 'spend', 'commit']);
    // The line was written with the count on it.
    expect(committed).toHaveLength(1);
    expect(committed[0]).toMatchObject({ cost_usd: 0.5, usage: { model: 'claude-x', input_tokens: 25, output_tokens: 4 } });
    expect(spend.added[0]).toMatchObject({ agent: 'a', grant: 'g', at: NOW, cost_usd: 0.5 });
  });

  it('count an answer the agent did not get whole as what was delivered (the meter abandoned)', () => {
    const calls: string[] = [];
    const partial: UsageReading = { usage: { model: 'claude-x', input_tokens: 25, output_tokens: 1 }, basis: 'partial' };
    const { staged, committed } = request(calls, { model: metered(usage('claude-x'), partial) });
    runCloseStages(staged, { answerCompleted: false, relayed: 0 });
    expect(calls).toEqual(['spend', 'commit']);
    expect(committed[0]?.usage).toMatchObject({ output_tokens: 1, partial: true });
  });

  it('only write the line of a request under no quota and off model traffic', () => {
    const calls: string[] = [];
    const { staged, committed } = request(calls);
    runCloseStages(staged, { answerCompleted: true, relayed: 1234 });
    expect(calls).toEqual(['commit']);
    expect(committed[0]).toEqual({ status: 200 });
  });
});

describe('the request-sent hooks', () => {
  it("read a metered body as undici sends it, and mark the request sent once it went whole (a replay's second send not read again)", () => {
    const model = new ModelExchange(plan, scope, undefined);
    model.bodyRead = new SentBodyReader(new RequestJsonReader(true));
    const { staged } = request([], { model });
    runBodySent(staged, Buffer.from('{"model":"claude-x",'));
    runBodySent(staged, Buffer.from('"max_tokens":64}'));
    expect(model.sent).toBe(false);
    expect(model.facts).toBeUndefined();
    runRequestSent(staged);
    expect(model.sent).toBe(true);
    expect(model.facts).toMatchObject({ model: 'claude-x', maxOutputTokens: 64 });
    expect(model.bodyRead).toBeUndefined();
    // A replay sends the body again: read no more.
    runBodySent(staged, Buffer.from('{"model":"other"}'));
    runRequestSent(staged);
    expect(model.facts).toMatchObject({ model: 'claude-x', maxOutputTokens: 64 });
  });

  it('pass a request off model traffic untouched', () => {
    const { staged } = request([]);
    runBodySent(staged, Buffer.from('{}'));
    runRequestSent(staged);
    expect(staged.model).toBeUndefined();
  });
});

const answer = (status: number): UpstreamAnswer => ({ status, method: 'POST', headers: { 'content-type': 'application/json' }, redact: undefined });

describe('the answer taps', () => {
  it('open none on an answer off model traffic: nothing reads its bytes', () => {
    expect(openAnswerTaps(request([]).staged, answer(200))).toBeUndefined();
  });

  it('mark a model answer answered whatever its status; only a billed (2xx) one is metered', () => {
    const refused = new ModelExchange(plan, scope, undefined);
    expect(openAnswerTaps(request([], { model: refused }).staged, answer(429))).toBeUndefined();
    expect(refused.answered).toBe(true);
    expect(refused.meter).toBeUndefined();
  });

  it("meter a model answer's bytes and count it when whole, the end waiting for the durable count", async () => {
    const calls: string[] = [];
    let durable!: () => void;
    const settled = new Promise<void>((resolve) => {
      durable = resolve;
    });
    const model = new ModelExchange(plan, scope, undefined);
    const { staged, spend } = request(calls, { model, settled });
    const reader = openAnswerTaps(staged, answer(200))!;
    expect(ANSWER_TAPS).toHaveLength(1); // one tap: its reader is given as it is, with nothing around it
    const body = JSON.stringify({ type: 'message', model: 'claude-x', usage: { input_tokens: 12, output_tokens: 3 } });
    reader.push(Buffer.from(body.slice(0, 20)));
    reader.push(Buffer.from(body.slice(20)));
    const end = reader.whole();
    expect(end).toBe(settled);
    expect(calls).toEqual(['spend']);
    expect(spend.added[0]?.reading.usage).toMatchObject({ model: 'claude-x', input_tokens: 12, output_tokens: 3 });
    // Counted once: the close then writes this count on the line and adds nothing more.
    expect(model.meter).toBeUndefined();
    expect(model.counted).toBeDefined();
    durable();
    await end;
    runCloseStages(staged, { answerCompleted: true, relayed: body.length });
    expect(calls).toEqual(['spend', 'commit']);
  });

  it('read as one when several open, in the list order, the end waiting for every count', async () => {
    const heard: string[] = [];
    const waits: Array<() => void> = [];
    const tap = (name: string, wait: boolean, opens = true): AnswerTap => ({
      name,
      open: () =>
        opens
          ? ({
              push: (chunk) => void heard.push(`${name} ${chunk.toString()}`),
              whole: () => {
                heard.push(`${name} whole`);
                return wait ? new Promise<void>((resolve) => waits.push(resolve)) : undefined;
              },
            } satisfies AnswerReader)
          : undefined,
    });
    const staged = request([]).staged;
    // None open, or one: no reader of keyway's own around it.
    expect(openAnswerTaps(staged, answer(200), [tap('a', false, false)])).toBeUndefined();
    const own: AnswerReader = { push: () => undefined, whole: () => undefined };
    expect(openAnswerTaps(staged, answer(200), [tap('x', false, false), { name: 'only', open: () => own }])).toBe(own);
    const reader = openAnswerTaps(staged, answer(200), [tap('a', true), tap('b', false, false), tap('c', true)])!;
    reader.push(Buffer.from('1'));
    reader.push(Buffer.from('2'));
    let ended = false;
    const end = reader.whole()!.then(() => {
      ended = true;
    });
    expect(heard).toEqual(['a 1', 'c 1', 'a 2', 'c 2', 'a whole', 'c whole']);
    waits[0]!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    waits[1]!();
    await end;
    expect(ended).toBe(true);
    // None waits: the end goes at once.
    expect(openAnswerTaps(staged, answer(200), [tap('a', false), tap('b', false)])!.whole()).toBeUndefined();
  });

  it("cut the answer when one count fails, though another's succeeds", async () => {
    const failing: AnswerTap = { name: 'f', open: () => ({ push: () => undefined, whole: () => Promise.reject(new Error('journal down')) }) };
    const fine: AnswerTap = { name: 'g', open: () => ({ push: () => undefined, whole: () => Promise.resolve() }) };
    const reader = openAnswerTaps(request([]).staged, answer(200), [fine, failing])!;
    await expect(reader.whole()).rejects.toThrow('journal down');
  });
});
