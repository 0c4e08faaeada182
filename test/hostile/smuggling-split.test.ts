// A refusal by keyway's HTTP parser is answered and audited once per connection, however the bytes
// arrive: the CL/TE smuggling cases written in pieces split at each boundary (the head, the last
// chunk "0\r\n\r\n", the smuggled request after it; and the rest byte by byte), each piece its own
// write (its own TLS record inside an intercepted CONNECT), the rest only once keyway has answered.
// Node's parser reports its error again for every piece still arriving, and once more when the
// client closes. Each connection must get one 400, leave one audit line, and send nothing upstream.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slack } from '../helpers/load.ts';
import { fillTemplate } from './harness/mutate.ts';
import { SMUGGLING_CASES } from './harness/smuggling-cases.ts';
import { sendInPieces, type SplitOutcome } from './harness/split-client.ts';
import { startStand, type Stand } from './harness/stand.ts';

const CASES = ['CL then TE, smuggled request after the last chunk', 'TE then CL, CL covering only the last chunk'].map((name) => {
  const found = SMUGGLING_CASES.find((c) => c.name === name);
  if (!found) throw new Error(`no smuggling case named "${name}"`);
  return found;
});

const LAST_CHUNK = '0\r\n\r\n';

/** The ways to cut `text` (head, last chunk, smuggled request) into pieces. */
function splits(text: string): Record<string, string[]> {
  const headEnd = text.indexOf('\r\n\r\n') + 4;
  const head = text.slice(0, headEnd);
  const rest = text.slice(headEnd);
  if (!rest.startsWith(LAST_CHUNK)) throw new Error('the case does not end its body with the last chunk');
  const smuggled = rest.slice(LAST_CHUNK.length);
  return {
    'head | last chunk | smuggled': [head, LAST_CHUNK, smuggled],
    'head | last chunk + smuggled': [head, rest],
    'head + last chunk | smuggled': [head + LAST_CHUNK, smuggled],
    'head | the rest byte by byte': [head, ...rest],
  };
}

type Leg = 'absolute' | 'tunnel-tls';

interface Run {
  name: string;
  leg: Leg;
  id: string;
  source: string;
  outcome: SplitOutcome;
}

describe('a parser refusal is audited once per connection, however the bytes arrive', () => {
  let stand: Stand;
  const runs: Run[] = [];
  beforeAll(async () => {
    // Every refusal written in full: none folded into a summary line (audit.refusal_budget).
    stand = await startStand({ refusalBudget: 100_000 });
    let n = 0;
    for (const [i, c] of CASES.entries()) {
      for (const leg of ['absolute', 'tunnel-tls'] as const) {
        for (const [split, pieces] of Object.entries(splits(c.text))) {
          n++;
          const id = `p${n}z`;
          const source = `127.0.0.${n + 1}`;
          const authority = leg === 'absolute' ? `plain.example.test:${stand.plain.port}` : `api.example.test:${stand.tls.port}`;
          const fill = { prefix: leg === 'absolute' ? `http://${authority}` : '', host: authority, id };
          const outcome = await sendInPieces(stand.keyway.port, {
            source,
            pieces: pieces.map((piece) => fillTemplate(piece, fill)),
            pauseMs: split.includes('byte by byte') ? 5 : 50,
            ...(leg === 'tunnel-tls' ? { tunnel: { authority, servername: 'api.example.test', ca: stand.keywayCa } } : {}),
          });
          runs.push({ name: `case ${i} (${c.name}), ${split}, ${leg}`, leg, id, source, outcome });
        }
      }
    }
  });
  afterAll(async () => {
    await stand?.stop();
  });

  it('the parser refused each at its head, before the rest was written, and the rest was written after', () => {
    expect(runs.length).toBe(CASES.length * 2 * 4);
    expect(runs.filter((r) => !r.outcome.answeredAfterFirst).map((r) => r.name)).toEqual([]);
    // What the test is about: bytes still arriving after the refusal. (A write after keyway's
    // linger has ended the connection may fail on a very slow machine; most must have gone.)
    const written = runs.reduce((sum, r) => sum + r.outcome.writtenAfter, 0);
    expect(written).toBeGreaterThan(runs.length);
  });

  it('each connection got one answer, a 400 bad_request', () => {
    for (const r of runs) {
      const heads = r.outcome.received.match(/HTTP\/1\.1 \d{3}/g) ?? [];
      expect(heads, r.name).toEqual(['HTTP/1.1 400']);
      expect(r.outcome.received, r.name).toContain('x-keyway-error: bad_request');
    }
  });

  it('each connection left one audit line, and nothing of it went upstream', async () => {
    const perClient = await refusalLinesByClient(stand, runs.length);
    expect(runs.filter((r) => perClient.get(r.source) !== 1).map((r) => `${r.name}: ${perClient.get(r.source) ?? 0} lines`)).toEqual([]);
    const upstream = [
      ...stand.plain.received.map((q) => q.target),
      ...stand.tls.received.map((q) => q.target),
      ...stand.plain.partial(),
      ...stand.tls.partial(),
    ];
    expect(upstream.filter((target) => target.includes('/fz/p'))).toEqual([]);
    expect(stand.keyway.crashes).toEqual([]);
  });
});

/**
 * The parser's refusal lines (bad_request, no method) per client address, once `expected` are
 * written (bounded: audit lines trail their answers, more so on a busy machine), read again after
 * a moment for any written twice. A summary line (`repeated`) is a failure: none may be folded here.
 */
async function refusalLinesByClient(stand: Stand, expected: number): Promise<Map<string, number>> {
  const read = () => {
    const perClient = new Map<string, number>();
    let count = 0;
    for (const text of readFileSync(stand.audit.path, 'utf8').split('\n').filter(Boolean)) {
      const line = JSON.parse(text) as { code: string | null; method: string | null; client: string; repeated?: number };
      if (line.repeated !== undefined) throw new Error(`a refusal was folded into a summary line: ${text}`);
      if (line.code !== 'bad_request' || line.method !== null) continue;
      perClient.set(line.client, (perClient.get(line.client) ?? 0) + 1);
      count++;
    }
    return { perClient, count };
  };
  const deadline = Date.now() + slack(2_000, 15_000);
  while (read().count < expected && Date.now() < deadline) await sleep(100);
  await sleep(500);
  return read().perClient;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
