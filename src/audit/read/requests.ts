// One entry per request for people reading the log (audit tail and query, the dashboard, the
// admin API's stream). An injected request has two lines (proxy/stages/audit-write-ahead.ts): its
// write-ahead line (`phase: "sent"`), in the log before the credential left, and its outcome line,
// with the same `id`, when it ended. Readers show the outcome alone; a `sent` line is shown only
// when no outcome follows it: the request was still in flight, or keyway was stopped (killed,
// crashed) while serving it. verify and export read the chain as it is, both lines.

import type { AuditLine } from '../record.ts';

/** How many unanswered `sent` lines a reader holds while waiting for their outcomes; past it, the oldest are shown as they are. */
const MAX_PENDING = 10_000;

interface Keyed {
  readonly line: AuditLine;
}

/** Oldest first: each `sent` line waits for its outcome; those still waiting at the end follow, in seq order. */
export async function* oneEntryPerRequest<T extends Keyed>(entries: AsyncIterable<T>): AsyncGenerator<T> {
  const waiting = new Map<string, T>();
  for await (const entry of entries) {
    const { line } = entry;
    if (line.phase === 'sent') {
      waiting.set(line.id, entry);
      if (waiting.size > MAX_PENDING) {
        const [oldest] = waiting;
        waiting.delete(oldest![0]);
        yield oldest![1];
      }
      continue;
    }
    waiting.delete(line.id);
    yield entry;
  }
  yield* [...waiting.values()].sort((a, b) => a.line.seq - b.line.seq);
}

/**
 * A page read newest first from a cursor cannot tell whether an outcome it did not read (on an
 * earlier page) answered a `sent` line: pages leave every `sent` line out. A request cut off by a
 * crash shows in `keyway audit query` and `tail` (oldest first) and in verify's count.
 */
export async function* withoutWriteAhead<T extends Keyed | AuditLine>(entries: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const entry of entries) {
    const line = 'line' in entry ? (entry as Keyed).line : (entry as AuditLine);
    if (line.phase !== 'sent') yield entry;
  }
}

/** The last `count` requests of a window of lines read oldest first: a `sent` line whose outcome is in the window is left out. */
export function lastRequests<T extends Keyed | AuditLine>(window: readonly T[], count: number): T[] {
  const lineOf = (entry: T) => ('line' in entry ? (entry as Keyed).line : (entry as AuditLine));
  const answered = new Set(
    window
      .map(lineOf)
      .filter((l) => l.phase !== 'sent')
      .map((l) => l.id),
  );
  const kept = window.filter((entry) => lineOf(entry).phase !== 'sent' || !answered.has(lineOf(entry).id));
  return count <= 0 ? [] : kept.slice(-count);
}

/** The same, for plain lines. */
export async function* linesPerRequest(lines: AsyncIterable<AuditLine>): AsyncGenerator<AuditLine> {
  for await (const { line } of oneEntryPerRequest(wrap(lines))) yield line;
}

async function* wrap(lines: AsyncIterable<AuditLine>): AsyncGenerator<Keyed> {
  for await (const line of lines) yield { line };
}
