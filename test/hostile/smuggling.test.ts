// Smuggling: hand-written request cases (CL/TE conflicts and variants, obs-fold, bare CR/LF, NUL,
// oversize chunk sizes, pipelining), each on absolute-form HTTP and inside an intercepted TLS
// connection, must be refused with a 4xx and nothing upstream, or re-framed so exactly the intended
// requests go up; malformed upstream responses must be answered 502, never relayed; an unasked-for
// second response on a kept-alive upstream connection must never reach anyone.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromText } from './harness/cases.ts';
import { fillTemplate } from './harness/mutate.ts';
import { RESPONSE_CASES, SMUGGLED_RESPONSE } from './harness/response-cases.ts';
import { runCase, type CaseOutcome, type Leg } from './harness/raw-client.ts';
import type { ReceivedRequest } from './harness/raw-upstream.ts';
import { SMUGGLING_CASES, type SmugglingCase } from './harness/smuggling-cases.ts';
import { startStand, type Stand } from './harness/stand.ts';
import { report } from './scale.ts';
import { slack } from '../helpers/load.ts';

const LEGS: Leg[] = ['absolute', 'tunnel-tls'];

function fillFor(stand: Stand, leg: Leg, id: string) {
  if (leg === 'tunnel-tls') {
    const host = `api.example.test:${stand.tls.port}`;
    return { prefix: '', host, id, authority: host, servername: 'api.example.test' };
  }
  const host = `plain.example.test:${stand.plain.port}`;
  return leg === 'absolute' ? { prefix: `http://${host}`, host, id } : { prefix: '', host, id, authority: host };
}

async function send(stand: Stand, leg: Leg, id: string, text: string): Promise<CaseOutcome> {
  const fill = fillFor(stand, leg, id);
  const c = fromText('corpus', leg, id, Buffer.from(fillTemplate(text, fill), 'latin1'), fill);
  return runCase(stand.keyway.port, stand.keywayCa, c.input);
}

/** Runs `fn` over `items`, `width` at a time, keeping the order. */
async function inBatches<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width) results.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return results;
}

/** refused / re-framed / FAIL, with why. */
function judge(c: SmugglingCase, outcome: CaseOutcome, upstream: ReceivedRequest[]): { verdict: string; why: string } {
  const statuses = outcome.answers.map((a) => `${a.status}${a.error ? ` ${a.error}` : ''}`).join(',');
  const why = `answers [${statuses}], upstream [${upstream.map((r) => `${r.method} ${r.target} ${r.bodyBytes}B`).join('; ')}]${outcome.hang ? ' HANG' : ''}${outcome.malformed ? ` MALFORMED ${outcome.malformed}` : ''}`;
  if (outcome.hang || outcome.malformed) return { verdict: 'FAIL', why };
  if (upstream.some((r) => r.target.includes('/smuggled'))) return { verdict: 'FAIL', why: `smuggled request went up: ${why}` };
  if (upstream.length === 0) {
    const refused = outcome.answers.length > 0 && outcome.answers.every((a) => a.status >= 400 && a.status < 500);
    if (refused) return { verdict: `refused ${outcome.answers[0]!.status}`, why };
    if (c.endless && outcome.answers.length === 0) return { verdict: 'waiting for the body, nothing upstream', why };
    return { verdict: 'FAIL', why: `neither refused nor forwarded: ${why}` };
  }
  const refusedAnswer = outcome.answers.length > 0 && outcome.answers.every((a) => a.status === 400);
  if (c.midBody && refusedAnswer && upstream.every((r) => r.bodyBytes === -1)) return { verdict: 'refused 400 mid-body, upstream cut off unfinished', why };
  if (c.refuseOnly) return { verdict: 'FAIL', why: `must be refused: ${why}` };
  if (upstream.length !== (c.up ?? 1)) return { verdict: 'FAIL', why: `expected ${c.up ?? 1} up: ${why}` };
  // Node hands pipelined requests over as soon as they are parsed, so they may reach the upstream in
  // any order (their answers still go back in order): compare the lengths as a set.
  const sorted = (list: number[]) => [...list].sort((a, b) => a - b).join(',');
  if (c.bodies && !upstream.some((r) => r.bodyBytes === -1) && sorted(upstream.map((r) => r.bodyBytes)) !== sorted(c.bodies))
    return { verdict: 'FAIL', why: `body lengths: ${why}` };
  return { verdict: 're-framed', why };
}

type AuditLine = { code: string | null; method: string | null; client: string; repeated?: number };

/**
 * The audit lines, and the parser's refusals (bad_request, no method) per client address, once at
 * least `expected` of them are written: audit lines trail their answers (batched writes), the more
 * so on a busy machine. Bounded: what is still missing then is judged missing.
 */
async function parserRefusals(path: string, expected: number): Promise<{ lines: AuditLine[]; refusals: Map<string, number> }> {
  const deadline = Date.now() + slack(2_000, 15_000);
  for (;;) {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditLine);
    const refusals = new Map<string, number>();
    let count = 0;
    for (const l of lines) {
      if (l.code !== 'bad_request' || l.method !== null) continue;
      refusals.set(l.client, (refusals.get(l.client) ?? 0) + 1);
      count++;
    }
    if (count >= expected || Date.now() > deadline) return { lines, refusals };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('request smuggling and malformed upstream responses', () => {
  let stand: Stand;
  beforeAll(async () => {
    stand = await startStand({ refusalBudget: 100_000 });
  });
  afterAll(async () => {
    await stand?.stop();
  });

  it(`${SMUGGLING_CASES.length} request cases on both legs: refused with nothing upstream, or re-framed`, async () => {
    const runs = SMUGGLING_CASES.flatMap((c, i) => LEGS.map((leg) => ({ c, leg, id: `s${i.toString(36)}${leg === 'absolute' ? 'a' : 't'}z` })));
    const outcomes = await inBatches(runs, 8, async (r) => ({ ...r, outcome: await send(stand, r.leg, r.id, r.c.text) }));
    await new Promise((resolve) => setTimeout(resolve, 300)); // let any late forward land upstream
    // A request whose body is still streaming has its head upstream already: it counts as gone up.
    const streaming = [...stand.plain.partial(), ...stand.tls.partial()].map((text) => {
      const [method = '', target = ''] = text.split(' ', 2);
      return { method, target, bodyBytes: -1, connection: 0, start: 0, end: 0, headers: [] } satisfies ReceivedRequest;
    });
    const received = [...stand.plain.received, ...stand.tls.received, ...streaming];
    const judged = outcomes.map((r) => ({
      ...r,
      ...judge(
        r.c,
        r.outcome,
        received.filter((q) => q.target.includes(`/fz/${r.id}/`)),
      ),
    }));
    await stand.settle(true);

    const counts: Record<string, number> = {};
    for (const j of judged) counts[j.verdict] = (counts[j.verdict] ?? 0) + 1;
    const perCase = Object.fromEntries(judged.map((j) => [`${j.c.family} | ${j.c.name} | ${j.leg}`, j.verdict]));
    report('smuggling', {
      request_cases: SMUGGLING_CASES.length,
      runs: judged.length,
      outcomes: counts,
      framing_mismatches: stand.ledger.mismatches.length,
      crashes: stand.keyway.crashes.length,
    });
    console.log(JSON.stringify(perCase, null, 1));
    // A refusal by the parser is audited once per connection, however many bytes follow it
    // (each run comes from its own loopback address, which the audit line names as `client`).
    // Every refusal has a line of its own here (the stand's raised refusal budget): with keyway's
    // default, the tunnel leg's refusals (one agent, one host) fold past the 20th into a summary line
    // written when the 10 s interval ends, naming the client of the first, which a run slower than
    // 10 s (a loaded machine) read as that client's second refusal.
    const refusedByParser = judged.filter((j) => j.outcome.answers.some((a) => a.body.includes('malformed HTTP request')));
    expect(refusedByParser.length).toBeGreaterThan(20);
    const { lines, refusals } = await parserRefusals(stand.audit.path, refusedByParser.length);
    expect(lines.filter((l) => l.repeated !== undefined)).toEqual([]);
    // One line for each refusal the client read; at most one where it stopped reading first (a
    // request after `Connection: close`, an endless body it gave up on).
    const wrong = judged.filter((j) => {
      const count = refusals.get(j.outcome.source) ?? 0;
      return count > 1 || (count === 0 && refusedByParser.includes(j));
    });
    expect(wrong.map((j) => `${j.c.name} (${j.leg}): ${refusals.get(j.outcome.source) ?? 0} lines`)).toEqual([]);
    const failures = judged.filter((j) => j.verdict === 'FAIL').map((j) => `${j.c.name} (${j.leg}): ${j.why}`);
    expect(SMUGGLING_CASES.length).toBeGreaterThanOrEqual(40);
    expect(failures).toEqual([]);
    expect(stand.ledger.mismatches).toEqual([]);
    expect(stand.keyway.crashes).toEqual([]);
  });

  it(`${RESPONSE_CASES.length} malformed upstream responses: 502 (or cut short when only the body is broken), keyway keeps serving`, async () => {
    const runs = RESPONSE_CASES.flatMap((c, i) => LEGS.map((leg) => ({ c, leg, key: `k${i}${leg[0]}` })));
    for (const r of runs) for (const upstream of [stand.plain, stand.tls]) upstream.scripts.set(r.key, { bytes: Buffer.from(r.c.bytes, 'latin1') });
    const judged = await inBatches(
      runs.map((r, i) => ({ ...r, i })),
      8,
      async ({ i, ...r }) => {
        const outcome = await send(stand, r.leg, `r${i.toString(36)}z`, `GET {PREFIX}/fz/{ID}/r/${r.key}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n`);
        const answer = outcome.answers[0];
        const verdict =
          outcome.hang || outcome.malformed
            ? 'FAIL'
            : answer?.status === 502 && answer.error !== undefined
              ? `502 ${answer.error}`
              : r.c.broken === 'body' && (outcome.cutShort || (outcome.closed && !answer))
                ? 'cut short'
                : r.c.broken === 'lenient' && answer?.status === 200 && answer.body === 'ok'
                  ? 'accepted, re-framed'
                  : 'FAIL';
        return { ...r, verdict, why: JSON.stringify(outcome).slice(0, 400) };
      },
    );
    const counts: Record<string, number> = {};
    for (const j of judged) counts[j.verdict] = (counts[j.verdict] ?? 0) + 1;
    const headCases = RESPONSE_CASES.filter((c) => c.broken === 'head').length;
    report('smuggling-responses', { response_cases: RESPONSE_CASES.length, head_broken: headCases, runs: judged.length, outcomes: counts });
    console.log(JSON.stringify(Object.fromEntries(judged.map((j) => [`${j.c.name} | ${j.leg}`, j.verdict])), null, 1));
    expect(headCases).toBeGreaterThanOrEqual(10);
    expect(judged.filter((j) => j.verdict === 'FAIL').map((j) => `${j.c.name} (${j.leg}): ${j.why}`)).toEqual([]);
    // Still serving everyone else.
    const after = await send(stand, 'absolute', 'rafterz', 'GET {PREFIX}/fz/{ID}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n');
    expect(after.answers[0]?.status).toBe(200);
    expect(stand.keyway.crashes).toEqual([]);
  });

  it('requests pipelined ahead of a CONNECT inside an intercepted connection are each audited, whatever went up', async () => {
    // Node drops the connection at a CONNECT it has no handler for; answers still queued behind the
    // first one never got 'close', so keyway once forwarded those requests with no audit line.
    // On the listener, keyway's own CONNECT handling takes the socket over instead, with the same effect.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = `v${i}z`;
      ids.push(`${id}a`, `${id}b`);
      const leg = i % 2 === 0 ? 'tunnel-tls' : 'absolute';
      await send(
        stand,
        leg,
        id,
        `GET {PREFIX}/fz/{ID}a/ HTTP/1.1\r\nHost: {HOST}\r\n\r\nPOST {PREFIX}/fz/{ID}b/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 2\r\n\r\nokCONNECT {PREFIX}/fz/{ID}c/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n`,
      );
    }
    await stand.settle(true);
    expect(stand.ledger.mismatches).toEqual([]);
    const audited = readFileSync(stand.audit.path, 'utf8');
    for (const id of ids) expect(audited, id).toContain(`"path":"/fz/${id}/"`);
  });

  it('an unasked-for second response on a kept-alive upstream connection reaches no one', async () => {
    for (const upstream of [stand.plain, stand.tls]) upstream.scripts.set('smug', { bytes: Buffer.from(SMUGGLED_RESPONSE, 'latin1'), keepOpen: true });
    const seen: string[] = [];
    for (const leg of LEGS) {
      for (let i = 0; i < 5; i++) {
        const first = await send(stand, leg, `m${leg[0]}${i}z`, 'GET {PREFIX}/fz/{ID}/r/smug/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n');
        const next = await send(stand, leg, `n${leg[0]}${i}z`, 'GET {PREFIX}/fz/{ID}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n');
        seen.push(...[...first.answers, ...next.answers].map((a) => a.body));
        expect(next.answers[0]?.status).toBe(200);
        expect(next.answers[0]?.body).toContain(`/fz/n${leg[0]}${i}z/`);
      }
    }
    expect(seen.join('\n')).not.toContain('smuggled answer');
  });
});
