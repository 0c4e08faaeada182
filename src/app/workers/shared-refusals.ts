// The audit refusal budget under proxy.workers (audit/refusal-budget.ts): identical refusals past
// audit.refusal_budget are folded into one summary line. Counted in each worker, the budget was
// per worker (20 full lines became 40 with two workers, and each wrote a summary of its own), so
// the volume an agent could force grew with the number of workers. Counted once: a worker hands
// every refusal's line to the primary, whose budget writes it in full or counts it, for all workers.
// A refusal costs the agent a request and the worker one IPC message; the primary writes at most
// the budget's lines, and one summary per interval.
import type { AuditEvent } from '../../audit/record.ts';
import type { AuditLog } from '../../audit/sink.ts';
import type { FromWorker } from './messages.ts';

/**
 * A worker's side: the refusal sent to the primary; false when the channel is gone (the worker's own
 * budget then writes it). send's own false is not that: it also means a backlog, the message still queued.
 */
export function refusalsToPrimary(send: (message: FromWorker) => unknown, connected: () => boolean): (event: AuditEvent) => boolean {
  return (event) => {
    if (!connected()) return false;
    try {
      send({ t: 'refusal', event });
      return true;
    } catch {
      return false;
    }
  };
}

/** The primary's side: into its own refusal budget, which writes the line or counts it. */
export function takeRefusal(budget: Pick<AuditLog, 'write'>, message: Extract<FromWorker, { t: 'refusal' }>): void {
  // A line that cannot be written is counted by the writer (droppedLines), as for the primary's own.
  void budget.write(message.event).catch(() => undefined);
}
