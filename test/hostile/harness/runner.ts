// Drives cases through the stand with a bounded pool of connections and tallies what happened:
// answers by status, hangs, answers keyway framed badly, crashes (a restart of the child), and
// whatever the ledger found. Samples of every failure keep the exact bytes, for the corpus.

import type { FuzzCase } from './cases.ts';
import { runCase, type CaseOutcome } from './raw-client.ts';
import type { Stand } from './stand.ts';

export interface Finding {
  id: string;
  kind: string;
  leg: string;
  what: string;
  bytes: string;
}

export interface Tally {
  cases: number;
  byKind: Record<string, number>;
  statuses: Record<string, number>;
  /** Complete clean requests answered in full, by count of answers. */
  answered: number;
  hangs: number;
  malformed: number;
  cutShort: number;
  /** Not clean, no answer: keyway waiting for bytes the case never sent. */
  waiting: number;
  clientErrors: number;
  crashes: number;
  findings: Finding[];
  ms: number;
}

export function newTally(): Tally {
  return { cases: 0, byKind: {}, statuses: {}, answered: 0, hangs: 0, malformed: 0, cutShort: 0, waiting: 0, clientErrors: 0, crashes: 0, findings: [], ms: 0 };
}

const MAX_FINDINGS = 50;

function note(tally: Tally, c: FuzzCase, what: string): void {
  if (tally.findings.length < MAX_FINDINGS)
    tally.findings.push({ id: c.id, kind: c.kind, leg: c.input.leg, what, bytes: c.input.bytes.subarray(0, 2000).toString('latin1') });
}

function record(tally: Tally, c: FuzzCase, outcome: CaseOutcome): void {
  const bump = (key: string) => (tally.statuses[key] = (tally.statuses[key] ?? 0) + 1);
  if (outcome.connectStatus !== undefined) bump(`connect ${outcome.connectStatus}`);
  for (const answer of outcome.answers) bump(answer.error ? `${answer.status} ${answer.error}` : String(answer.status));
  if (outcome.hang) {
    tally.hangs++;
    note(tally, c, `hang: ${outcome.answers.length} answers of ${c.input.expected ?? '?'} in ${Math.round(outcome.ms)} ms`);
  }
  if (outcome.malformed !== undefined) {
    tally.malformed++;
    note(tally, c, `keyway's answer cannot be framed: ${outcome.malformed}`);
  }
  if (outcome.cutShort) tally.cutShort++;
  if (c.input.expected !== undefined && outcome.answers.length >= c.input.expected) tally.answered++;
  if (c.input.expected === undefined && outcome.answers.length === 0 && !outcome.closed && outcome.connectStatus === undefined) tally.waiting++;
}

/** Runs `cases` with at most `concurrency` connections open, then settles the ledger. */
export async function runBatch(stand: Stand, cases: readonly FuzzCase[], concurrency: number, tally: Tally): Promise<void> {
  const started = performance.now();
  for (const c of cases) for (const [id, lengths] of c.bodies) stand.ledger.expectBodies(id, lengths);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      if (!stand.keyway.alive()) {
        tally.crashes = stand.keyway.crashes.length;
        await stand.keyway.ensure();
      }
      tally.cases++;
      tally.byKind[c.kind] = (tally.byKind[c.kind] ?? 0) + 1;
      try {
        record(tally, c, await runCase(stand.keyway.port, stand.keywayCa, c.input));
      } catch (err) {
        tally.clientErrors++;
        note(tally, c, `client error: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await stand.settle();
  tally.crashes = stand.keyway.crashes.length;
  tally.ms += performance.now() - started;
}
