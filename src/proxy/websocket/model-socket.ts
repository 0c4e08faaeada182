import type { Duplex } from 'node:stream';
import { ProxyError } from '../../errors/index.ts';
import { wsMeter } from '../../spend/meters/index.ts';
import type { BudgetVerdict } from '../../spend/ledger.ts';
import type { UsageReading } from '../../spend/usage.ts';
import { CountedUsage } from '../model-exchange.ts';
import { exceeded } from '../stages/budget.ts';
import type { Handshake } from './handshake.ts';
import { INTERNAL_ERROR, POLICY_VIOLATION } from './handshake.ts';
import { ModelMessageGate } from './model-gate.ts';
import { ModelMessageTap } from './model-messages.ts';

/**
 * A metered model socket (stage budget planned it: codex's Responses over a WebSocket): each
 * response's usage is counted as it completes (ledger, then the socket's audit line at close), and
 * the socket is closed once a budget on it is used up: the response in flight finished, the next
 * would be refused. Undefined when the handshake is not model traffic.
 */
export function modelTap(
  request: Handshake,
  socket: Duplex,
  closeWith: (code: number, reason: string) => void,
): { tap: ModelMessageTap; gate: ModelMessageGate } | undefined {
  const model = request.model;
  if (model === undefined) return undefined;
  const { runtime } = request.conn;
  const spend = runtime.spend;
  const meter = wsMeter(model.plan);
  const counted = new CountedUsage(model.plan.requestModel, model.plan.api);
  const budgeted = spend.budgeted(model.scope);
  const refuse = (error: ProxyError) => {
    request.draft.failed(error);
    closeWith(POLICY_VIOLATION, 'keyway: model budget exceeded');
  };
  const judge = (verdict: BudgetVerdict, now: Date) => {
    for (const standing of verdict.warn) spend.warn(standing, model.scope);
    const over = verdict.over;
    // Over an `over: approve` budget too: a socket cannot be held for a person; its next handshake is.
    if (over === undefined) return;
    request.draft.event.budget = over.budget.name;
    refuse(exceeded(request, over, now));
  };
  const onReading = (reading: UsageReading) => {
    const now = runtime.now();
    counted.add(reading, model.scope, spend, now);
    if (!budgeted || socket.destroyed) return;
    const verdict = spend.check(model.scope, now);
    if (verdict instanceof Promise)
      verdict.then(
        (v) => judge(v, now),
        () => undefined,
      );
    else judge(verdict, now);
  };
  request.beforeCommit = () => {
    const last = meter.close();
    if (last !== undefined) counted.add(last, model.scope, spend, runtime.now());
    counted.writeTo(request.draft.event);
  };
  // Each message the agent starts is sized, and under a budget checked before it goes up (model-gate.ts).
  const over = (): boolean | Promise<boolean> => {
    if (socket.destroyed) return true;
    const now = runtime.now();
    const verdict = spend.check(model.scope, now);
    if (!(verdict instanceof Promise)) {
      judge(verdict, now);
      return verdict.over !== undefined;
    }
    return verdict.then(
      (v) => {
        judge(v, now);
        return v.over !== undefined;
      },
      (err: unknown) => {
        // As stage budget: a check that cannot be made refuses; the message waiting for it is dropped.
        request.draft.failed(
          new ProxyError('internal_error', 'model budgets cannot be checked: the primary process does not answer', {
            cause: err,
            hint: 'retry; keyway is restarting or stopping',
          }),
        );
        closeWith(INTERNAL_ERROR, 'keyway: budgets cannot be checked');
        return true;
      },
    );
  };
  return { tap: new ModelMessageTap(meter, onReading), gate: new ModelMessageGate(budgeted ? over : undefined, (bytes) => meter.onClientBytes(bytes)) };
}
