// Model spend under proxy.workers: the primary owns the one spend ledger (spend/ledger/ledger.ts), so
// its memory holds every worker's counts at once and a budget is exact for the whole keyway, not
// per worker. A worker's ledger (RemoteSpend) sends each metered answer to it (fire and forget, in
// order on the worker's one channel) and asks it for a check only when a budget applies to the
// request's scope: with no budget on the scope, no message at all.
//
// Why a check sees every add that finished before it, even from another worker (so the overshoot
// past a budget is at most what was in flight when it was crossed): a worker's `process.send`
// writes the message to its channel's socket at once when nothing is queued before it (libuv tries
// the write before queueing it), so an add that returned was in the primary's socket buffer before
// another worker, told of that answer, could even send its check. The primary's loop reads every
// socket that is readable in the same poll and emits their messages before its check phase; the
// check is answered from setImmediate, i.e. after that poll, by which time an add already buffered
// on another worker's channel has been counted. (One gap: a burst of adds on one channel larger
// than what one poll reads from it is read in the next; those answers were finishing as the check
// came, which is "in flight".)
// test/integration/spend-workers.test.ts races an add on one worker against a check on another
// that it triggers, 300 times: answered at once instead, 41 to 56 checks of the 300 missed the add
// (three runs); answered from setImmediate, none did (five runs).
import type { BudgetConfig } from '../../config/spend.ts';
import { scopeValueOf } from '../../spend/core/budgets.ts';
import { wireAncestors } from './wire-ancestors.ts';
import type { BudgetStanding, BudgetVerdict, SpendEntry, SpendLedgerApi, SpendScope } from '../../spend/core/ledger.ts';
import { NO_BUDGET } from '../../spend/ledger/counts.ts';
import type { FromPrimary, FromWorker, WireSpendEntry, WireStanding, WireVerdict } from './messages.ts';
import { PendingQuestions } from './pending-questions.ts';

/** A worker's spend ledger: the primary's, over IPC. */
export class RemoteSpend implements SpendLedgerApi {
  readonly #send: (message: FromWorker) => boolean;
  readonly #budgets: () => readonly BudgetConfig[];
  readonly #pending = new PendingQuestions<BudgetVerdict>();
  /** Adds the primary has not yet said are durable. */
  readonly #adds = new PendingQuestions<void>();
  #outstanding = 0;
  /** The newest add's answer: the primary answers in order, so once it resolves every earlier add is durable. */
  #last: Promise<void> | undefined;
  #lastFailed: Error | undefined;

  /** `budgets`: the config this worker runs (the primary's, at start and after each reload). */
  constructor(send: (message: FromWorker) => boolean, budgets: () => readonly BudgetConfig[]) {
    this.#send = send;
    this.#budgets = budgets;
  }

  add(entry: SpendEntry): void {
    // A primary that is gone (or a channel closed under us) fails the add: the answer's end is not given.
    const wire = toWireEntry(entry);
    this.#outstanding++;
    const added = this.#adds.ask(undefined, (id) => this.#send({ t: 'spend-add', id, entry: wire }));
    const last = added.then(
      () => {
        this.#outstanding--;
        if (this.#last === last) this.#lastFailed = undefined;
      },
      (err: unknown) => {
        this.#outstanding--;
        if (this.#last === last) this.#lastFailed = err as Error;
        throw err;
      },
    );
    last.catch(() => undefined); // a caller that does not wait is not an unhandled rejection
    this.#last = last;
  }

  settled(): Promise<void> | undefined {
    if (this.#outstanding > 0) return this.#last;
    return this.#lastFailed === undefined ? undefined : Promise.reject(this.#lastFailed);
  }

  /** The primary's answer to add `id`. */
  added(message: Extract<FromPrimary, { t: 'spend-added' }>): void {
    this.#adds.answer(message.id, () => {
      if (message.error !== undefined) throw new Error(message.error);
    });
  }

  check(scope: SpendScope, now: Date): BudgetVerdict | Promise<BudgetVerdict> {
    // A delegated agent is always asked about: the primary's agent table holds its ancestors' and its own budgets (issue 89).
    const delegated = scope.ancestors !== undefined && scope.ancestors.length > 0;
    if (!delegated && !this.#budgets().some((budget) => scopeValueOf(budget, scope) !== undefined)) return NO_BUDGET;
    const { agent, grant, end_user } = scope;
    const ancestors = wireAncestors(scope.ancestors);
    return this.#pending.ask(undefined, (id) =>
      this.#send({
        t: 'spend-check',
        id,
        scope: ancestors === undefined ? { agent, grant, end_user } : { agent, grant, end_user, ancestors },
        nowMs: now.getTime(),
      }),
    );
  }

  /** The primary's verdict on check `id`. */
  answer(message: Extract<FromPrimary, { t: 'spend-verdict' }>): void {
    this.#pending.answer(message.id, () => {
      if (message.verdict === null) throw new Error(message.error ?? 'the primary could not check the budgets');
      return fromWireVerdict(message.verdict);
    });
  }

  /** The primary flushes its ledger: nothing is kept here. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The primary is gone: every check waiting, and every one after, fails. */
  primaryGone(): void {
    this.#pending.primaryGone();
    this.#adds.primaryGone();
  }
}

/** The primary's side of `spend-add`: counted at once in its ledger, and answered once durable. */
export function takeSpendAdd(
  ledger: SpendLedgerApi,
  message: Extract<FromWorker, { t: 'spend-add' }>,
  reply: (message: Extract<FromPrimary, { t: 'spend-added' }>) => void,
): void {
  const { atMs, ...rest } = message.entry;
  ledger.add({ ...rest, at: new Date(atMs) });
  const settled = ledger.settled();
  if (settled === undefined) return reply({ t: 'spend-added', id: message.id });
  settled.then(
    () => reply({ t: 'spend-added', id: message.id }),
    (err: unknown) => reply({ t: 'spend-added', id: message.id, error: (err as Error).message }),
  );
}

/** The primary's side of `spend-check`: answered after the adds already read with it are counted (see the head of this file). */
export function answerSpendCheck(
  ledger: SpendLedgerApi,
  message: Extract<FromWorker, { t: 'spend-check' }>,
  reply: (message: Extract<FromPrimary, { t: 'spend-verdict' }>) => void,
): void {
  setImmediate(() => {
    Promise.resolve()
      .then(() => ledger.check(message.scope, new Date(message.nowMs)))
      .then(
        (verdict) => reply({ t: 'spend-verdict', id: message.id, verdict: toWireVerdict(verdict) }),
        (err: unknown) => reply({ t: 'spend-verdict', id: message.id, verdict: null, error: (err as Error).message }),
      );
  });
}

function toWireEntry(entry: SpendEntry): WireSpendEntry {
  const wire: WireSpendEntry = {
    agent: entry.agent,
    grant: entry.grant,
    end_user: entry.end_user,
    atMs: entry.at.getTime(),
    reading: entry.reading,
    cost_usd: entry.cost_usd,
  };
  const ancestors = wireAncestors(entry.ancestors);
  return ancestors === undefined ? wire : { ...wire, ancestors };
}

const toWireStanding = (s: BudgetStanding): WireStanding => ({
  budget: s.budget,
  scope: s.scope,
  used: s.used,
  limit: s.limit,
  resetsAtMs: s.resets_at.getTime(),
});
const fromWireStanding = (s: WireStanding): BudgetStanding => ({
  budget: s.budget,
  scope: s.scope,
  used: s.used,
  limit: s.limit,
  resets_at: new Date(s.resetsAtMs),
});

const toWireVerdict = (v: BudgetVerdict): WireVerdict => ({ over: v.over === undefined ? null : toWireStanding(v.over), warn: v.warn.map(toWireStanding) });

function fromWireVerdict(v: WireVerdict): BudgetVerdict {
  if (v.over === null && v.warn.length === 0) return NO_BUDGET;
  return { over: v.over === null ? undefined : fromWireStanding(v.over), warn: v.warn.map(fromWireStanding) };
}
