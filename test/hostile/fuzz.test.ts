// Fuzzing: grammar-built requests (fast-check), mutations of recorded curl/undici/Python traffic and
// fuzzed CONNECT authorities, over absolute-form HTTP, plain HTTP in a CONNECT and TLS in a CONNECT,
// against keyway in a child process and raw upstreams that frame what they get strictly.
// Every run replays the committed corpus, then runs fresh cases: 0 crashes, 0 hangs over 2 s, no
// answer from keyway a strict reader cannot frame, and 0 requests the upstream framed differently
// from what keyway audited.
//   KEYWAY_FUZZ_SEED=N reproduces a run; npm run hostile -- --long fuzz.test.ts runs a million.

import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCase, corpusCases, readCorpus, sampleArb, type Ports } from './harness/cases.ts';
import type { CorpusEntry } from './harness/mutate.ts';
import { newTally, runBatch, type Tally } from './harness/runner.ts';
import { startStand, type Stand } from './harness/stand.ts';
import { LONG, report, scale } from './scale.ts';

const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));
const FRESH = Number(process.env['KEYWAY_FUZZ_CASES'] ?? scale(10_000, 1_000_000));
const BATCH = 1_000;
const CONCURRENCY = 48;
// The long form may be given a time budget instead of running all its cases; it says so when it stops.
// The short form's time budget: on an idle machine its cases take well under it; on a busy one it
// stops there, past its floor of cases (the floor runs whatever the time: it is what the run checks).
const BUDGET_MS = Number(process.env['KEYWAY_FUZZ_BUDGET_S'] ?? scale(100, 0)) * 1000;
const FRESH_FLOOR = Math.min(FRESH, 2_000);
const SEED = Number(process.env['KEYWAY_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** Committed corpus files: recorded client traffic, and the cases earlier runs found. */
function loadCorpus(which: (file: string) => boolean): CorpusEntry[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.jsonl') && which(f))
    .sort()
    .flatMap((f) => readCorpus(readFileSync(`${CORPUS_DIR}${f}`, 'utf8')));
}
const RECORDED = 'recorded.jsonl';

const caseId = (run: string, n: number) => `${run}${n.toString(36).padStart(6, '0')}z`;

function summary(tally: Tally, stand: Stand): Record<string, unknown> {
  return {
    cases: tally.cases,
    crashes: tally.crashes,
    hangs: tally.hangs,
    framing_mismatches: stand.ledger.mismatches.length,
    malformed_answers: tally.malformed,
    cases_per_s: Math.round(tally.cases / (tally.ms / 1000)),
    upstream_requests_matched: stand.ledger.matched,
    answered_clean: tally.answered,
    waiting_for_bytes: tally.waiting,
    cut_short: tally.cutShort,
    client_errors: tally.clientErrors,
    by_kind: tally.byKind,
    statuses: tally.statuses,
    seed: SEED,
  };
}

function expectNoFindings(tally: Tally, stand: Stand): void {
  const detail = JSON.stringify(
    { findings: tally.findings.slice(0, 5), mismatches: stand.ledger.mismatches.slice(0, 5), crashes: stand.keyway.crashes.slice(0, 2) },
    null,
    1,
  );
  expect(tally.crashes, detail).toBe(0);
  expect(tally.hangs, detail).toBe(0);
  expect(tally.malformed, detail).toBe(0);
  expect(stand.ledger.mismatches, detail).toEqual([]);
}

describe('fuzzing the request line, CONNECT authority, headers, chunked framing and tunnels', () => {
  let stand: Stand;
  let ports: Ports;
  const recordedCorpus = loadCorpus((f) => f === RECORDED);
  const foundCorpus = loadCorpus((f) => f !== RECORDED);
  const corpus = [...recordedCorpus, ...foundCorpus];

  beforeAll(async () => {
    stand = await startStand();
    ports = { plain: stand.plain.port, tls: stand.tls.port, keyway: stand.keyway.port };
  });

  afterAll(async () => {
    await stand?.stop();
  });

  it('replays the committed corpus on every leg: recorded traffic answered in full, framed as audited', async () => {
    // Recorded client traffic is valid: every request in it gets its answer.
    const recorded = corpusCases(recordedCorpus, ports, (n) => caseId('c', n));
    const tally = newTally();
    await runBatch(stand, recorded, 16, tally);
    const answered = tally.answered;
    // Cases earlier runs found: the same invariants, whatever keyway answers.
    await runBatch(
      stand,
      corpusCases(foundCorpus, ports, (n) => caseId('d', n)),
      16,
      tally,
    );
    await stand.settle(true);
    report('fuzz-corpus', summary(tally, stand));
    expectNoFindings(tally, stand);
    expect(recorded.length).toBeGreaterThanOrEqual(90);
    expect(answered).toBe(recorded.length);
  });

  it(
    `${FRESH} fresh cases: 0 crashes, 0 hangs over 2 s, 0 framing mismatches`,
    async () => {
      const tally = newTally();
      const arb = sampleArb(corpus.length);
      const started = performance.now();
      for (let done = 0, batch = 0; done < FRESH; done += BATCH, batch++) {
        if (BUDGET_MS > 0 && done >= FRESH_FLOOR && performance.now() - started > BUDGET_MS) {
          report('fuzz-budget', { stopped_after_s: Math.round((performance.now() - started) / 1000), cases: tally.cases, of: FRESH });
          break;
        }
        const size = Math.min(BATCH, FRESH - done);
        const samples = fc.sample(arb, { seed: SEED + batch, numRuns: size });
        const cases = samples.map((s, i) => buildCase(s, caseId('f', done + i), ports, corpus));
        await runBatch(stand, cases, CONCURRENCY, tally);
        if (LONG && batch % 50 === 0) {
          report('fuzz-progress', {
            cases: tally.cases,
            crashes: tally.crashes,
            hangs: tally.hangs,
            mismatches: stand.ledger.mismatches.length,
            cases_per_s: Math.round(tally.cases / (tally.ms / 1000)),
            first: stand.ledger.mismatches[0] ?? tally.findings[0],
          });
        }
      }
      await stand.settle(true);
      report('fuzz', summary(tally, stand));
      if (tally.findings.length || stand.ledger.mismatches.length)
        console.log(JSON.stringify({ findings: tally.findings, mismatches: stand.ledger.mismatches.slice(0, 50) }, null, 1));
      expectNoFindings(tally, stand);
    },
    scale(300_000, 0),
  );
});
