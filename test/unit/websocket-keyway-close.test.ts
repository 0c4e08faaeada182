import { randomBytes } from 'node:crypto';
import type { Transform } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentBoundFrames, closeFrame } from '../../src/proxy/websocket/agent-close.ts';
import { ClientPlaceholderCheck } from '../../src/proxy/stages/socket-readers/client-placeholders.ts';

// keyway closing a WebSocket itself: a close frame goes to the agent only between two of the
// upstream's frames (agent-close.ts), and an agent's message carrying a placeholder keyway holds
// goes nowhere (client-placeholders.ts), however the frames and TCP chunks fall.

const HELD = 'kwcap_abcdefghijklmnopqrstuvwxyz0123';

/** A frame, written here independently of the code under test; masked as a client's when `mask`. */
function frame(opcode: number, payload: Buffer, fin = true, mask = false): Buffer {
  const length = payload.length;
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const head = Buffer.alloc(size);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (length < 126 ? length : length < 0x10000 ? 126 : 127);
  if (size === 4) head.writeUInt16BE(length, 2);
  if (size === 10) head.writeBigUInt64BE(BigInt(length), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, key, masked]);
}

/** Writes `bytes` to `stream` cut at `cuts`; resolves with what came out. */
async function through(stream: Transform, bytes: Buffer, cuts: number[]): Promise<Buffer> {
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue;
    stream.write(bytes.subarray(at, cut));
    at = cut;
  }
  stream.write(bytes.subarray(at));
  await new Promise((r) => setImmediate(r));
  return Buffer.concat(out);
}

describe('AgentBoundFrames', () => {
  it('closes with a close frame between frames, however the chunks fell, and passes the bytes untouched', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(200_000)), async (sizes, cuts) => {
        const bytes = Buffer.concat(sizes.map((n) => frame(0x2, Buffer.alloc(n, 0x61))));
        const frames = new AgentBoundFrames();
        const out = await through(frames, bytes, cuts);
        expect(out.equals(bytes)).toBe(true);
        const closing: Buffer[] = [];
        frames.on('data', (c: Buffer) => closing.push(c));
        expect(frames.close(1008, 'keyway: grant revoked')).toBe(true);
        await new Promise((r) => setImmediate(r));
        expect(Buffer.concat(closing).equals(closeFrame(1008, 'keyway: grant revoked'))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('mid-frame (or mid-header) it sends nothing more and says so', async () => {
    const bytes = frame(0x1, Buffer.alloc(300, 0x62));
    for (const cut of [1, 3, 100]) {
      const frames = new AgentBoundFrames();
      await through(frames, bytes.subarray(0, cut), []);
      const after: Buffer[] = [];
      frames.on('data', (c: Buffer) => after.push(c));
      expect(frames.close(1008, 'x')).toBe(false);
      await new Promise((r) => setImmediate(r));
      expect(after).toEqual([]);
    }
  });

  it('a close frame holds the code and the reason, cut to 123 bytes', () => {
    const frameBytes = closeFrame(1008, 'r'.repeat(200));
    expect(frameBytes[0]).toBe(0x88);
    expect(frameBytes[1]).toBe(125);
    expect(frameBytes.readUInt16BE(2)).toBe(1008);
  });
});

describe('ClientPlaceholderCheck', () => {
  const options = (held: number[] = []) => ({
    holds: (text: string) => text.includes(HELD),
    limit: 4096,
    hold: (bytes: number) => {
      held.push(bytes);
      return true;
    },
    release: (bytes: number) => held.push(-bytes),
  });

  it('a message with a placeholder it holds, in fragments, text or binary, goes nowhere; control frames and other messages pass as they came', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(40), fc.array(fc.nat(400)), async (binary, split, cuts) => {
        const message = Buffer.from(`{"token":"${HELD}"}`);
        const at = Math.min(split, message.length);
        const before = frame(0x1, Buffer.from('hello'), true, true);
        const ping = frame(0x9, Buffer.from('p'), true, true);
        const first = frame(binary ? 0x2 : 0x1, message.subarray(0, at), false, true);
        const rest = frame(0x0, message.subarray(at), true, true);
        const held: number[] = [];
        const check = new ClientPlaceholderCheck(options(held));
        let refused = false;
        check.once('refuse', () => (refused = true));
        const out = await through(check, Buffer.concat([before, first, ping, rest]), cuts);
        expect(refused).toBe(true);
        expect(out.equals(Buffer.concat([before, ping]))).toBe(true);
        expect(held.reduce((a, b) => a + b, 0)).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('a message past the bound goes on as it came, unsearched', async () => {
    const big = frame(0x1, Buffer.from(`${'a'.repeat(5000)}${HELD}`), true, true);
    const check = new ClientPlaceholderCheck(options());
    let refused = false;
    check.once('refuse', () => (refused = true));
    expect((await through(check, big, [100, 3000])).equals(big)).toBe(true);
    expect(refused).toBe(false);
  });

  it('an unmasked or compressed frame from the agent is a protocol error', async () => {
    for (const bad of [frame(0x1, Buffer.from('x')), Buffer.from([0xc1, 0x81, 1, 2, 3, 4, 5])]) {
      const check = new ClientPlaceholderCheck(options());
      const failed = new Promise<Error>((resolve) => check.once('error', resolve));
      check.write(bad);
      expect((await failed).name).toBe('WebSocketProtocolError');
    }
  });
});
