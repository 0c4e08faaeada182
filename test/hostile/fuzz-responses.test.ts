// Fuzzing upstream responses: the raw upstream answers clean requests with generated responses
// (fast-check: status lines, 1xx runs, CL/TE conflicts, duplicate and negative lengths, bad chunk
// sizes, NUL, obs-fold, truncated bodies). keyway must answer 502 with its own error, cut the
// answer off when only the body turns out broken, or relay a well-formed answer; never relay bytes
// a strict reader cannot frame, never hang past 2 s, never crash, and keep serving.

import fc from 'fast-check';
import { brotliDecompressSync, constants, gunzipSync, unzipSync, zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromText } from './harness/cases.ts';
import { frameResponse } from './harness/frames.ts';
import { fillTemplate } from './harness/mutate.ts';
import { runCase, type Leg } from './harness/raw-client.ts';
import { responseSpecArb, serialiseResponse } from './harness/response-grammar.ts';
import { leakResponseArb } from './harness/response-leaks.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startStand, type Stand } from './harness/stand.ts';
import { report, scale } from './scale.ts';

const CASES = Number(process.env['KEYWAY_FUZZ_RESPONSES'] ?? scale(500, 100_000));
const LEAK_CASES = Number(process.env['KEYWAY_FUZZ_LEAKS'] ?? scale(200, 20_000));
const BATCH = 500;
const CONCURRENCY = 32;
const SEED = Number(process.env['KEYWAY_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

// The leak guard decodes compressed bodies and relays them decoded (src/proxy/leak-guard/encoding.ts),
// lenient at the end as fetch is: this is the same reading, done independently with zlib's sync API.
const { Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH, ZSTD_e_flush } = constants;
const DECODE: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => gunzipSync(b, { finishFlush: Z_SYNC_FLUSH }),
  'x-gzip': (b) => gunzipSync(b, { finishFlush: Z_SYNC_FLUSH }),
  deflate: (b) => unzipSync(b, { finishFlush: Z_SYNC_FLUSH }),
  br: (b) => brotliDecompressSync(b, { finishFlush: BROTLI_OPERATION_FLUSH }),
  zstd: (b) => zstdDecompressSync(b, { finishFlush: ZSTD_e_flush }),
};

/** The body the agent should get once keyway has undone the codings, or why it cannot be relayed. */
function decoded(headers: Array<[string, string]>, body: Buffer): Buffer | string {
  const codings = headers
    .filter(([n]) => n === 'content-encoding')
    .flatMap(([, v]) => v.split(','))
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length > 2) return 'too many codings';
  let out = body;
  for (const coding of codings.reverse()) {
    const decode = DECODE[coding];
    if (!decode) return `unknown coding ${coding}`;
    try {
      out = decode(out);
    } catch {
      return `corrupt ${coding}`;
    }
  }
  return out;
}

/** The final response a strict reader frames from what the upstream sent (1xx skipped), or why not. */
function reference(bytes: Buffer): { status: number; body: string } | string {
  let at = 0;
  for (let guard = 0; guard < 100; guard++) {
    const result = frameResponse(bytes, at, 'GET', true);
    if (result.kind !== 'message') return result.kind === 'invalid' ? result.reason : 'incomplete';
    const status = Number(result.frame.first);
    if (status >= 200) {
      if (result.frame.end !== bytes.length) return 'bytes after the response';
      const body = decoded(result.frame.headers, result.frame.body);
      return typeof body === 'string' ? `not relayable: ${body}` : { status, body: body.toString('latin1') };
    }
    if (status === 101) return '101 to a plain request';
    at = result.frame.end;
  }
  return 'too many 1xx';
}

describe('fuzzing upstream responses', () => {
  let stand: Stand;
  beforeAll(async () => {
    stand = await startStand();
  });
  afterAll(async () => {
    await stand?.stop();
  });

  it(
    `${CASES} generated upstream responses: 502, cut short, or relayed well-formed; 0 hangs, 0 crashes`,
    async () => {
      const counts: Record<string, number> = {};
      const failures: string[] = [];
      const lenient: string[] = [];
      const bump = (key: string) => (counts[key] = (counts[key] ?? 0) + 1);
      const started = performance.now();
      let cases = 0;
      for (let done = 0, batch = 0; done < CASES; done += BATCH, batch++) {
        const specs = fc.sample(responseSpecArb, { seed: SEED + batch, numRuns: Math.min(BATCH, CASES - done) });
        let next = 0;
        const worker = async () => {
          while (next < specs.length) {
            const n = done + next;
            const bytes = Buffer.from(serialiseResponse(specs[next++]!), 'latin1');
            const key = `q${n.toString(36)}`;
            for (const upstream of [stand.plain, stand.tls]) upstream.scripts.set(key, { bytes });
            const leg: Leg = n % 3 === 0 ? 'tunnel-tls' : 'absolute';
            const id = `u${n.toString(36)}z`;
            const host = leg === 'absolute' ? `plain.example.test:${stand.plain.port}` : `api.example.test:${stand.tls.port}`;
            const fill =
              leg === 'absolute' ? { prefix: `http://${host}`, host, id } : { prefix: '', host, id, authority: host, servername: 'api.example.test' };
            const c = fromText(
              'corpus',
              leg,
              id,
              Buffer.from(fillTemplate(`GET {PREFIX}/fz/{ID}/r/${key}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n`, fill), 'latin1'),
              fill,
            );
            if (!stand.keyway.alive()) await stand.keyway.ensure();
            const outcome = await runCase(stand.keyway.port, stand.keywayCa, c.input);
            for (const upstream of [stand.plain, stand.tls]) upstream.scripts.delete(key);
            cases++;
            const ref = reference(bytes);
            const answer = outcome.answers[0];
            const sample = () => `${leg} ${JSON.stringify(bytes.toString('latin1').slice(0, 300))} -> ${JSON.stringify(outcome).slice(0, 300)}`;
            if (outcome.hang || outcome.malformed !== undefined) {
              bump('FAIL');
              failures.push(sample());
            } else if (answer?.error !== undefined) {
              bump(`${answer.status} ${answer.error}`);
            } else if (!answer) {
              bump('cut short');
            } else if (typeof ref === 'string') {
              // keyway's parser took what the strict one refuses; what it relayed was still well-formed.
              bump('relayed, lenient');
              if (lenient.length < 10) lenient.push(`${ref}: ${sample()}`);
            } else if (answer.status !== ref.status || (answer.body !== ref.body && answer.body.length < 2048)) {
              bump('FAIL');
              failures.push(`relayed differently from the strict framing: ${sample()}`);
            } else {
              bump('relayed');
            }
          }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        await stand.settle();
      }
      await stand.settle(true);
      const figures = {
        cases,
        crashes: stand.keyway.crashes.length,
        outcomes: counts,
        framing_mismatches: stand.ledger.mismatches.length,
        cases_per_s: Math.round(cases / ((performance.now() - started) / 1000)),
        seed: SEED,
      };
      report('fuzz-responses', figures);
      if (lenient.length) console.log(JSON.stringify({ lenient }, null, 1));
      expect(failures.slice(0, 10)).toEqual([]);
      expect(stand.keyway.crashes).toEqual([]);
      expect(stand.ledger.mismatches).toEqual([]);
      const after = await runCase(
        stand.keyway.port,
        stand.keywayCa,
        fromText(
          'corpus',
          'absolute',
          'uafterz',
          Buffer.from(`GET http://plain.example.test:${stand.plain.port}/fz/uafterz/ HTTP/1.1\r\nHost: plain.example.test:${stand.plain.port}\r\n\r\n`),
          {},
        ).input,
      );
      expect(after.answers[0]?.status).toBe(200);
    },
    scale(180_000, 0),
  );

  it(
    `${LEAK_CASES} generated upstream echoes of the secret (whole, re-encoded, wrapped, cut at an edge, in a header): none reaches the client`,
    async () => {
      const failures: string[] = [];
      let relayed = 0;
      for (let done = 0, batch = 0; done < LEAK_CASES; done += BATCH, batch++) {
        const specs = fc.sample(leakResponseArb, { seed: SEED + 7919 + batch, numRuns: Math.min(BATCH, LEAK_CASES - done) });
        let next = 0;
        const worker = async () => {
          while (next < specs.length) {
            const n = done + next;
            const spec = specs[next++]!;
            const key = `l${n.toString(36)}`;
            for (const upstream of [stand.plain, stand.tls]) upstream.scripts.set(key, { bytes: Buffer.from(spec.bytes, 'latin1') });
            const leg: Leg = n % 2 === 0 ? 'tunnel-tls' : 'absolute';
            const id = `v${n.toString(36)}z`;
            const host = leg === 'absolute' ? `plain.example.test:${stand.plain.port}` : `api.example.test:${stand.tls.port}`;
            const fill =
              leg === 'absolute' ? { prefix: `http://${host}`, host, id } : { prefix: '', host, id, authority: host, servername: 'api.example.test' };
            const c = fromText(
              'corpus',
              leg,
              id,
              Buffer.from(fillTemplate(`GET {PREFIX}/fz/{ID}/r/${key}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n`, fill), 'latin1'),
              fill,
            );
            if (!stand.keyway.alive()) await stand.keyway.ensure();
            const outcome = await runCase(stand.keyway.port, stand.keywayCa, c.input);
            for (const upstream of [stand.plain, stand.tls]) upstream.scripts.delete(key);
            const answer = outcome.answers[0];
            const sample = () => `${leg} ${JSON.stringify(spec.bytes.slice(0, 400))} -> ${JSON.stringify(answer ?? outcome).slice(0, 400)}`;
            if (answer?.status !== 200) {
              failures.push(`not relayed: ${sample()}`);
              continue;
            }
            relayed++;
            const unwrap = (text: string) => text.replace(/[\r\n]/g, '');
            const leak =
              findLeak(answer.body, CANARY) ??
              findLeak(JSON.stringify(answer.headers), CANARY) ??
              (spec.startSlice !== undefined && unwrap(answer.body).startsWith(unwrap(spec.startSlice)) ? 'a slice at the start' : undefined) ??
              (spec.endSlice !== undefined && unwrap(answer.body).endsWith(unwrap(spec.endSlice)) ? 'a slice at the end' : undefined);
            if (leak) failures.push(`${leak}: ${sample()}`);
          }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        await stand.settle();
      }
      report('fuzz-responses-leaks', { cases: LEAK_CASES, relayed, failures: failures.length, seed: SEED });
      expect(failures.slice(0, 5)).toEqual([]);
      expect(stand.keyway.crashes).toEqual([]);
    },
    scale(180_000, 0),
  );
});
