// What the audit.export tests share: the seq a received message carries, the log read raw, /metrics
// scraped, and the one way they wait on a receiver or a figure (untilReceived, untilMetrics).
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { expect } from 'vitest';
import type { AuditLine } from '../../src/audit/index.ts';
import type { TestProxy } from './keyway.ts';
import { parseMetrics, seriesKey } from './metrics-text.ts';
import type { Receiver } from './siem-receivers.ts';
import { waitForAsync } from './wait.ts';

/** The seq a received message carries: syslog's SD seq, CEF's cn1, OCSF's unmapped.seq. */
export function seqOf(message: string): number {
  const m = /\bseq="(\d+)"/.exec(message) ?? /\bcn1=(\d+)/.exec(message);
  if (m) return Number(m[1]);
  return (JSON.parse(message) as { unmapped: { seq: number } }).unmapped.seq;
}

/** The live log, every line as written (readAudit folds a write-ahead line into its outcome; the export sends both). */
export function logLines(p: TestProxy): AuditLine[] {
  const out: AuditLine[] = [];
  for (const text of liveLog(p.auditPath).split('\n')) if (text !== '') out.push(JSON.parse(text) as AuditLine);
  return out;
}

/**
 * The live audit file's text: none yet after a rotation renamed it (the writer makes the next file
 * with its next line), so a missing file holds no line.
 */
function liveLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

export async function scrape(p: TestProxy): Promise<Map<string, number>> {
  const token = readFileSync(p.running.services.paths.adminToken, 'utf8').trim();
  const res = await request(`http://127.0.0.1:${p.running.adminAddress!.port}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return parseMetrics(await res.body.text());
}

/** A target's series key, as /metrics labels it (its place in the config and its format). */
export function exportSeries(name: string, target: number, format: string): string {
  return seriesKey(name, { target: `audit.export[${target}]`, format });
}

/** Waits until `r` has the line `seq`. */
export function untilReceived(r: Receiver, seq: number, timeoutMs = 20_000): Promise<true> {
  return waitForAsync(async () => (r.messages.some((m) => seqOf(m) === seq) ? true : undefined), `the receiver to get seq ${seq}`, timeoutMs);
}

/** Waits until /metrics passes `check`; the scrape it passed on. */
export function untilMetrics(p: TestProxy, check: (m: Map<string, number>) => boolean, what: string): Promise<Map<string, number>> {
  return waitForAsync(async () => {
    const m = await scrape(p);
    return check(m) ? m : undefined;
  }, what);
}

/** Waits until `r` has the log's last line, and the log has no newer one (an outcome line comes just after its answer); its seq. */
export async function settled(p: TestProxy, r: Receiver): Promise<number> {
  for (;;) {
    const head = logLines(p).at(-1)!.seq;
    await untilReceived(r, head);
    if (logLines(p).at(-1)!.seq === head) return head;
  }
}

/** Waits until `r` has the log's last line, then checks it got a run of seqs with no gap and no repeat. */
export async function caughtUp(p: TestProxy, r: Receiver): Promise<number[]> {
  await settled(p, r);
  const seqs = r.messages.map(seqOf);
  expect(new Set(seqs).size, 'no line twice').toBe(seqs.length);
  expect(seqs, 'in order, none missing').toEqual(seqs.map((_, i) => seqs[0]! + i));
  return seqs;
}
