// The agent's side of a metered model socket under a budget whose check answers later (proxy.workers:
// the primary is asked): each message the agent starts, and everything after it, waits for the
// answer. Over, or no answer, and none of it goes upstream (proxy/stages/socket-readers/model-gate.ts).
import { describe, expect, it } from 'vitest';
import { ModelMessageGate } from '../../src/proxy/stages/socket-readers/model-gate.ts';

/** A masked client frame, written here independently of the code under test. */
function frame(opcode: number, text: string, fin = true): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]), mask, masked]);
}

interface Verdict {
  promise: Promise<boolean>;
  settle: (over: boolean) => void;
  fail: () => void;
}

function verdict(): Verdict {
  let settle!: (over: boolean) => void;
  let fail!: () => void;
  const promise = new Promise<boolean>((resolve, reject) => {
    settle = resolve;
    fail = () => reject(new Error('the primary process did not answer'));
  });
  return { promise, settle, fail };
}

/** A gate whose checks are answered by the test, in the order asked, and what it passes on. */
function gate() {
  const asked: Verdict[] = [];
  const sizes: number[] = [];
  const passed: Buffer[] = [];
  const g = new ModelMessageGate(
    () => {
      const v = verdict();
      asked.push(v);
      return v.promise;
    },
    (bytes) => sizes.push(bytes),
  );
  g.on('data', (chunk: Buffer) => passed.push(chunk));
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return { g, asked, sizes, passed: () => Buffer.concat(passed), turn };
}

const ask = frame(0x1, '{"type":"response.create"}');
const ping = frame(0x9, 'p');
const next = frame(0x1, '{"type":"response.create","n":2}');

describe('a model socket whose budget check answers later', () => {
  it('holds the message, and what follows it, until the answer; under the budget it all goes, in order', async () => {
    const { g, asked, passed, turn } = gate();
    g.write(Buffer.concat([ask, ping]));
    g.write(next);
    await turn();
    expect(passed()).toEqual(Buffer.alloc(0));
    expect(asked).toHaveLength(1); // the second message is not read before the first's answer
    asked[0]!.settle(false);
    await turn();
    expect(passed()).toEqual(Buffer.concat([ask, ping]));
    expect(asked).toHaveLength(2);
    asked[1]!.settle(false);
    await turn();
    expect(passed()).toEqual(Buffer.concat([ask, ping, next]));
  });

  it('over the budget: nothing of the message goes, nor anything after it', async () => {
    const { g, asked, passed, turn } = gate();
    g.write(Buffer.concat([ask, ping]));
    g.write(next);
    await turn();
    asked[0]!.settle(true);
    await turn();
    g.write(frame(0x1, 'later'));
    await turn();
    expect(passed()).toEqual(Buffer.alloc(0));
    expect(asked).toHaveLength(1);
  });

  it('what went before the message goes at once; a check that fails stops the rest', async () => {
    const { g, asked, passed, turn } = gate();
    const first = frame(0x1, 'first');
    g.write(first);
    await turn();
    asked[0]!.settle(false);
    await turn();
    g.write(Buffer.concat([ping, ask]));
    await turn();
    expect(passed()).toEqual(Buffer.concat([first, ping])); // the ping came before the second message
    asked[1]!.fail();
    await turn();
    g.write(next);
    await turn();
    expect(passed()).toEqual(Buffer.concat([first, ping]));
  });

  it('a message in fragments is checked once, at its first frame', async () => {
    const { g, asked, sizes, passed, turn } = gate();
    const parts = [frame(0x1, 'part one, ', false), frame(0x0, 'part two', true)];
    g.write(Buffer.concat(parts));
    await turn();
    asked[0]!.settle(false);
    await turn();
    expect(asked).toHaveLength(1);
    expect(passed()).toEqual(Buffer.concat(parts));
    expect(sizes).toEqual([18]);
  });
});
