import { LRUCache } from 'lru-cache';
import type { RequestFacts } from '../../spend/core/request-facts.ts';
import { RequestJsonReader } from '../../spend/request/request-json.ts';
import { ProxyError } from '../../errors/index.ts';
import { wsMeter } from '../../spend/core/meters/index.ts';
import type { BudgetVerdict } from '../../spend/core/ledger.ts';
import type { UsageReading } from '../../spend/core/usage.ts';
import { CountedUsage } from './model-exchange.ts';
import { exceeded, spendScope } from './budget.ts';
import { socketRoute } from '../../spend/core/meters/routes.ts';
import { unmeterable } from '../unmeterable.ts';
import { INTERNAL_ERROR, POLICY_VIOLATION } from '../websocket-frames/close-codes.ts';
import type { OpenSocket, SocketReaders, SocketTap } from './hooks.ts';
import type { StagedRequest } from './request.ts';
import { type MessageRead, ModelMessageGate } from './socket-readers/model-gate.ts';
import { ModelMessageTap } from './socket-readers/model-messages.ts';

/**
 * A WebSocket on a model host (stage budget judged its handshake): a metered one (codex's Responses)
 * has each message the agent starts checked against the budgets that apply then and each response's
 * usage counted as it completes (modelTap); one keyway does not meter is closed at the agent's next
 * message once a budget applies to it (unmeteredSocketGate). Any other socket is not its own.
 */
export const modelSocket: SocketTap = {
  name: 'model-socket',
  open(request) {
    // A metered socket's answers are read by the meter: its frames may not be compressed.
    if (request.model !== undefined) return { reads: true, start: (socket) => modelTap(request, socket) };
    if (!unmeteredSocket(request)) return undefined;
    return { reads: false, start: (socket) => ({ fromAgent: unmeteredSocketGate(request, socket) }) };
  },
};

/**
 * A metered model socket (stage budget planned it: codex's Responses over a WebSocket): each
 * response's usage is counted as it completes (ledger, then the socket's audit line at close), and
 * the socket is closed once a budget on it is used up: the response in flight finished, the next
 * would be refused. Whether a budget applies is asked at each message, not once at the handshake:
 * a budget added by `keyway reload` applies to a socket opened before it from the agent's next
 * message on (issue 85). Its audit line gets the socket's usage when it closes.
 */
function modelTap(request: StagedRequest, socket: OpenSocket): SocketReaders {
  const model = request.model!;
  const { spending, decisions } = request.conn;
  const spend = spending.spend;
  const agent = model.scope.agent ?? '';
  const meter = wsMeter(model.plan, {
    get: (id) => RESPONSE_CONTEXTS.get(`${agent}\n${id}`),
    set: (id, tokens) => RESPONSE_CONTEXTS.set(`${agent}\n${id}`, tokens),
  });
  const counted = new CountedUsage(model.plan.requestModel, model.plan.api);
  const refuse = (error: ProxyError) => {
    request.draft.failed(error);
    socket.closeWith(POLICY_VIOLATION, 'keyway: model budget exceeded');
  };
  const judge = (verdict: BudgetVerdict, now: Date) => {
    for (const standing of verdict.warn) spend.warn(standing, model.scope);
    const over = verdict.over;
    // Over an `over: approve` budget too: a socket cannot be held for a person; its next handshake is.
    if (over === undefined) return;
    request.draft.event.budget = over.budget.name;
    refuse(exceeded(request, over, now));
  };
  /** Counts one response; returns what its completing message waits for before it reaches the agent (spend.settled()). */
  const onReading = (reading: UsageReading): Promise<void> | undefined => {
    const now = decisions.now();
    counted.add(reading, model.scope, spend, now);
    const durable = spend.settled();
    // Judged once the message that completed the response has gone on to the agent (the tap passes
    // it on after this returns, once the count is durable): a close now would go ahead of it, and
    // the agent would lose the end of a response it is charged for. The next message it sends is
    // checked by the gate meanwhile.
    const judgeAfter = () =>
      setImmediate(() => {
        if (socket.gone || !spend.budgeted(model.scope)) return;
        const verdict = spend.check(model.scope, now);
        if (verdict instanceof Promise)
          verdict.then(
            (v) => judge(v, now),
            () => undefined,
          );
        else judge(verdict, now);
      });
    if (durable === undefined) judgeAfter();
    else durable.then(judgeAfter, () => undefined);
    return durable;
  };
  // When the socket closes, before its audit line is written: what the meter read of a response it never saw complete.
  const closed = () => {
    for (const left of meter.close()) counted.add(left, model.scope, spend, decisions.now());
    counted.writeTo(request.draft.event);
  };
  // Each message the agent starts is sized, and under a budget checked before it goes up (model-gate.ts).
  const over = (): boolean | Promise<boolean> => {
    if (socket.gone) return true;
    // The live config's budgets (a loop over them): none on this socket, nothing to check.
    if (!spend.budgeted(model.scope)) return false;
    const now = decisions.now();
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
        socket.closeWith(INTERNAL_ERROR, 'keyway: budgets cannot be checked');
        return true;
      },
    );
  };
  const read = messageRead(
    request,
    grantId(request),
    () => spend.budgeted(model.scope),
    (id) => RESPONSE_CONTEXTS.has(`${agent}\n${id}`),
    socket,
  );
  const gate = endsOnError(new ModelMessageGate(over, (bytes) => meter.onClientBytes(bytes, read.facts()), read), socket);
  return { fromAgent: gate, toAgent: new ModelMessageTap(meter, onReading), closed };
}

/** A gate whose frames cannot be read ends both sides. */
function endsOnError(gate: ModelMessageGate, socket: OpenSocket): ModelMessageGate {
  gate.once('error', () => socket.destroy());
  return gate;
}

/**
 * What the responses each agent's sockets completed held (input and output tokens), by agent and
 * response id, for one that continues it (`previous_response_id`) on any socket of this process:
 * Codex continues its conversation on the socket it reconnects with. Bounded: the oldest go first.
 */
const RESPONSE_CONTEXTS = new LRUCache<string, number>({ max: 4096 });

function grantId(request: StagedRequest): string | undefined {
  return request.grant?.id;
}

/**
 * Each message the agent sends on a metered socket, read as the server reads it (the strict reader
 * of request bodies: spend/request/request-json.ts): its facts give the response's floor (its cap, the
 * conversation it continues). Under a budget, a message keyway cannot read so (not one strict JSON
 * object, text or binary; compressed), or one that continues a response keyway never saw complete (its
 * input is a conversation keyway cannot count), is refused: the socket closed (1008,
 * budget_unmeterable), the message's last byte never sent. Without a budget it goes as it came.
 */
function messageRead(
  request: StagedRequest,
  grant: string | undefined,
  budgeted: () => boolean,
  known: (id: string) => boolean,
  socket: OpenSocket,
): MessageRead & { facts(): RequestFacts | undefined } {
  let reader: RequestJsonReader | undefined;
  let reason: string | undefined;
  let facts: RequestFacts | undefined;
  const refuse = (why: string): true => {
    request.draft.failed(
      unmeterable(
        `a message on the WebSocket ${request.path} (${why})`,
        grant,
        'send response.create as one uncompressed JSON text message, continuing only a response this keyway saw complete',
      ),
    );
    socket.closeWith(POLICY_VIOLATION, 'keyway: cannot meter this message under a model budget');
    return true;
  };
  return {
    start(header) {
      reader = undefined;
      reason = undefined;
      facts = undefined;
      // A binary message is read too: a server that takes one reads its bytes as the same JSON.
      if (header.rsv !== 0) return budgeted() ? refuse('a compressed message') : false;
      reader = new RequestJsonReader(true);
      return false;
    },
    push(bytes) {
      if (reader !== undefined && reason === undefined) reason = reader.push(bytes);
    },
    end() {
      if (reader === undefined) return false;
      reason ??= reader.end();
      facts = reason === undefined ? reader.facts() : undefined;
      if (!budgeted()) return false;
      if (reason !== undefined) return refuse(reason);
      const continues = facts?.continues;
      if (continues !== undefined && continues !== null && !known(continues)) return refuse('it continues a response this keyway did not see complete');
      return false;
    },
    facts: () => facts,
  };
}

/**
 * A socket on a model host that keyway does not meter (OpenAI's Realtime, Gemini's Live API: stage
 * budget found its route `unknown`), opened while no budget applied to it: a budget added since
 * (`keyway reload`) closes it at the agent's next message (1008, budget_unmeterable on its audit
 * line), nothing of that message sent up, as its handshake would now be refused. Default deny: what
 * cannot be counted does not go on under a budget.
 */
function unmeteredSocketGate(request: StagedRequest, socket: OpenSocket): ModelMessageGate {
  const grant = request.grant!;
  const spend = request.conn.spending.spend;
  const scope = spendScope(request);
  const over = (): boolean => {
    if (!spend.budgeted(scope)) return false;
    request.draft.failed(
      unmeterable(
        `the WebSocket ${request.path} on grant ${grant.id} (a socket no meter of keyway reads)`,
        grant.id,
        'only the model routes keyway meters (docs/spend.md) pass under a budget',
      ),
    );
    socket.closeWith(POLICY_VIOLATION, 'keyway: model budget applies');
    return true;
  };
  return endsOnError(new ModelMessageGate(over, () => undefined), socket);
}

/** A socket on a model host that no meter of keyway reads (stage budget found its route `unknown`). */
function unmeteredSocket(request: StagedRequest): boolean {
  const grant = request.grant;
  if (grant === undefined || request.model !== undefined) return false;
  return socketRoute(grant.modelApi, request.conn.target.host, request.path)?.kind === 'unknown';
}
