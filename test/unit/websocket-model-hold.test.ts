// A metered WebSocket's completing message waits for its count (issue 85): ModelMessageTap holds
// the last payload piece of the text message that completes a response until the count it reports
// is durable (the promise onReading returns), then passes every byte on, in order; a count that
// cannot be made durable stops the stream with nothing more passed on. Messages that complete
// nothing, binary frames and pings pass as they come.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ModelMessageTap, type MessageMeter } from '../../src/proxy/stages/socket-readers/model-messages.ts';
import type { UsageReading } from '../../src/spend/core/usage.ts';

/** An unmasked frame (server to client), written here apart from the code under test. */
function frame(opcode: number, text: string, fin = true): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('short frames only');
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, payload.length]), payload]);
}

/** A meter that reports one reading per message saying "completed". */
const meter: MessageMeter = {
  onServerMessage: (text) => (text.includes('completed') ? [{ usage: { model: 'gpt-5', input_tokens: 1, output_tokens: 1 }, basis: 'reported' }] : []),
};

function tapped(onReading: (reading: UsageReading) => Promise<void> | undefined) {
  const tap = new ModelMessageTap(meter, onReading);
  const out = new PassThrough();
  tap.pipe(out);
  let got = Buffer.alloc(0);
  out.on('data', (chunk: Buffer) => (got = Buffer.concat([got, chunk])));
  return { tap, got: () => got };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ModelMessageTap', () => {
  it("holds the completing message's last bytes until its count is durable, then passes everything in order", async () => {
    let durable!: () => void;
    const counted = new Promise<void>((resolve) => (durable = resolve));
    const { tap, got } = tapped(() => counted);
    const delta = frame(0x1, '{"type":"response.output_text.delta"}');
    const ping = frame(0x9, '');
    // The completing message in two fragments, cut across writes.
    const first = frame(0x1, '{"type":"response.', false);
    const last = frame(0x0, 'completed"}');
    tap.write(Buffer.concat([delta, ping, first, last.subarray(0, 4)]));
    await tick();
    expect(got()).toEqual(Buffer.concat([delta, ping, first, last.subarray(0, 2)]));
    tap.write(last.subarray(4));
    await tick();
    // The earlier piece of the last fragment went; its last piece waits for the count.
    expect(got()).toEqual(Buffer.concat([delta, ping, first, last.subarray(0, 4)]));
    durable();
    await tick();
    expect(got()).toEqual(Buffer.concat([delta, ping, first, last]));
    // And what follows it flows.
    const next = frame(0x2, 'binary');
    tap.write(next);
    await tick();
    expect(got()).toEqual(Buffer.concat([delta, ping, first, last, next]));
  });

  it('a count that cannot be made durable stops the stream: the completing message never arrives whole', async () => {
    const { tap, got } = tapped(() => Promise.reject(new Error('model spend cannot be journaled (ENOSPC)')));
    const done = frame(0x1, '{"type":"response.completed"}');
    tap.write(done);
    tap.write(frame(0x1, '{"type":"more"}'));
    await tick();
    await tick();
    expect(got()).toEqual(done.subarray(0, 2));
  });

  it('with the count durable at once (the process journals it), nothing waits', async () => {
    const { tap, got } = tapped(() => undefined);
    const done = frame(0x1, '{"type":"response.completed"}');
    tap.write(done);
    await tick();
    expect(got()).toEqual(done);
  });
});
