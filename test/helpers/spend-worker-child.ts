// A stand-in for a keyway worker (proxy.workers) for test/integration/spend-workers.test.ts: forked
// by the test, which plays the primary with the real SpendLedger and the real answering functions.
// It holds a RemoteSpend on its IPC channel, exactly as worker-main.ts does, and speaks the real
// messages (spend-add, spend-added, spend-check, spend-verdict); the test's own orders are `test-*` messages.
// - test-load: `concurrency` loops, each: check; over a budget: stop; else a request "in flight" for
//   a moment, then add its usage. Answers with what it added.
// - test-listen / test-connect / test-round: two children joined by a loopback socket. On a round
//   one adds then tells the other over the socket (as a client told of an answer goes on to its next
//   request), and the other checks at once: the check must already count that add.
import { connect, createServer, type Socket } from 'node:net';
import { RemoteSpend } from '../../src/app/workers/shared-spend.ts';
import type { FromPrimary, FromWorker } from '../../src/app/workers/messages.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import type { SpendEntry, SpendScope } from '../../src/spend/core/ledger.ts';

type TestOrder =
  | { t: 'test-load'; budgets: BudgetConfig[]; scope: SpendScope; concurrency: number; tokens: [number, number]; cost: number }
  | { t: 'test-listen'; budgets: BudgetConfig[]; scope: SpendScope }
  | { t: 'test-connect'; port: number }
  | { t: 'test-round'; round: number; scope: SpendScope; tokens: [number, number] };

const send = (message: FromWorker | Record<string, unknown>): boolean => process.send!(message);
let budgets: BudgetConfig[] = [];
const spend = new RemoteSpend(send as (m: FromWorker) => boolean, () => budgets);
let peer: Socket | undefined;

const entry = (scope: SpendScope, tokens: [number, number], cost: number | null): SpendEntry => ({
  ...scope,
  at: new Date(),
  reading: { usage: { model: 'm', input_tokens: tokens[0], output_tokens: tokens[1] }, basis: 'reported' },
  cost_usd: cost,
});

process.on('message', (message: FromPrimary | TestOrder) => {
  switch (message.t) {
    case 'spend-verdict':
      spend.answer(message);
      return;
    case 'spend-added':
      spend.added(message);
      return;
    case 'test-load':
      budgets = message.budgets;
      void load(message);
      return;
    case 'test-listen': {
      budgets = message.budgets;
      const scope = message.scope;
      const server = createServer((socket) => {
        let buffered = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          for (let cut = buffered.indexOf('\n'); cut >= 0; cut = buffered.indexOf('\n')) {
            const round = Number(buffered.slice(0, cut));
            buffered = buffered.slice(cut + 1);
            void Promise.resolve(spend.check(scope, new Date())).then((v) => send({ t: 'test-seen', round, used: v.over?.used ?? 0 }));
          }
        });
      });
      server.listen(0, '127.0.0.1', () => send({ t: 'test-port', port: (server.address() as { port: number }).port }));
      return;
    }
    case 'test-connect':
      peer = connect(message.port, '127.0.0.1', () => send({ t: 'test-connected' }));
      peer.setNoDelay(true);
      return;
    case 'test-round':
      spend.add(entry(message.scope, message.tokens, null));
      peer!.write(`${message.round}\n`);
      return;
    default:
      return;
  }
});

async function load(order: Extract<TestOrder, { t: 'test-load' }>): Promise<void> {
  let tokens = 0;
  let usd = 0;
  let requests = 0;
  const loop = async () => {
    for (;;) {
      const verdict = await spend.check(order.scope, new Date());
      if (verdict.over !== undefined) return;
      // In flight: the answer is on its way; its usage is known only at its end.
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      spend.add(entry(order.scope, order.tokens, order.cost));
      tokens += order.tokens[0] + order.tokens[1];
      usd += order.cost;
      requests++;
    }
  };
  await Promise.all(Array.from({ length: order.concurrency }, loop));
  send({ t: 'test-loaded', tokens, usd, requests });
}

send({ t: 'test-ready' });
