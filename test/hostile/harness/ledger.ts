// Joins what the raw upstreams received with what keyway audited: every request an upstream framed
// must match one audit line with the same method and path, and every audit line saying a request
// went up and was answered must match one the upstream framed. For cases whose bytes a strict reader
// frames cleanly, the body the upstream got must also have a length that case actually sent.

import { slack } from '../../helpers/load.ts';
import type { AuditRecord } from './audit-tail.ts';
import type { FramingFailure, ReceivedRequest } from './raw-upstream.ts';

export interface Mismatch {
  kind: 'not audited' | 'audited, never received' | 'body length' | 'upstream could not frame';
  detail: string;
}

const FORWARDING = new Set(['inject', 'tunnel', 'error']);
const CASE_ID = /\/fz\/([a-z0-9]+)\//;

const keyOf = (method: string | null, path: string | null) => `${method ?? ''} ${path ?? ''}`;
const pathOf = (target: string) => target.split(/[?#]/, 1)[0] ?? '';

export class FramingLedger {
  /** Audit lines that may match an upstream request, by method + path; `required` must be matched. */
  readonly #audited = new Map<string, Array<{ required: boolean; round: number; at: number }>>();
  readonly #waiting: Array<{ request: ReceivedRequest; round: number; at: number }> = [];
  /** Body lengths a clean case sent, by case id. */
  readonly #bodies = new Map<string, { lengths: number[]; round: number }>();
  readonly mismatches: Mismatch[] = [];
  #round = 0;
  matched = 0;

  expectBodies(caseId: string, lengths: number[]): void {
    this.#bodies.set(caseId, { lengths, round: this.#round });
  }

  addAudit(records: AuditRecord[]): void {
    for (const r of records) {
      if (r.method === 'CONNECT' || !FORWARDING.has(r.decision)) continue;
      const required = r.decision !== 'error' && r.code === null && r.status !== null;
      const list = this.#audited.get(keyOf(r.method, r.path)) ?? [];
      list.push({ required, round: this.#round, at: Date.now() });
      this.#audited.set(keyOf(r.method, r.path), list);
    }
  }

  addUpstream(received: ReceivedRequest[], failures: FramingFailure[]): void {
    for (const f of failures) this.mismatches.push({ kind: 'upstream could not frame', detail: `${f.reason}: ${JSON.stringify(f.bytes.slice(0, 300))}` });
    for (const request of received) {
      this.#waiting.push({ request, round: this.#round, at: Date.now() });
      const id = CASE_ID.exec(request.target)?.[1];
      const lengths = id === undefined ? undefined : this.#bodies.get(id)?.lengths;
      if (lengths && !lengths.includes(request.bodyBytes)) {
        this.mismatches.push({
          kind: 'body length',
          detail: `${request.method} ${request.target}: upstream got ${request.bodyBytes} bytes, the case sent ${lengths.join('/')}`,
        });
      }
    }
  }

  /**
   * Matches what can be matched. Lines and requests left over from `graceRounds` rounds ago or
   * more (audit lines trail their response by a few ms) are mismatches; `final` settles everything.
   */
  /** Requests and required audit lines still waiting for their match. */
  get unmatched(): number {
    let lines = 0;
    for (const list of this.#audited.values()) for (const a of list) if (a.required) lines++;
    return this.#waiting.length + lines;
  }

  settle(final = false, graceRounds = 2): void {
    this.#round++;
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const { request } = this.#waiting[i]!;
      const list = this.#audited.get(keyOf(request.method, pathOf(request.target)));
      if (!list?.length) continue;
      const pick = Math.max(
        0,
        list.findIndex((a) => a.required),
      );
      list.splice(pick, 1);
      this.#waiting.splice(i, 1);
      this.matched++;
    }
    const now = Date.now();
    // How long a line or request may wait for its match, besides its rounds: on a busy machine a
    // request audited ahead reaches the upstream late for want of CPU, not because it was lost.
    const graceMs = slack(1_000, 20_000);
    const old = (round: number, at: number) => final || (this.#round - round > graceRounds && now - at > graceMs);
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const { request, round, at } = this.#waiting[i]!;
      if (!old(round, at)) continue;
      this.#waiting.splice(i, 1);
      this.mismatches.push({ kind: 'not audited', detail: `${request.method} ${request.target} (${request.bodyBytes} body bytes)` });
    }
    for (const [key, list] of this.#audited) {
      const kept = list.filter((a) => {
        if (!old(a.round, a.at)) return true;
        if (a.required) this.mismatches.push({ kind: 'audited, never received', detail: key });
        return false;
      });
      if (kept.length) this.#audited.set(key, kept);
      else this.#audited.delete(key);
    }
    for (const [id, { round }] of this.#bodies) if (final || this.#round - round > graceRounds + 1) this.#bodies.delete(id);
  }
}
