import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactAll, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { WebSocketFrameGuard } from '../../src/proxy/websocket/upstream-guard.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { scale } from '../hostile/scale.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';

// WebSocket frames from upstream to agent through the leak guard: messages fragmented into
// continuation frames at any point, control frames between fragments, the byte stream cut into
// TCP chunks anywhere. Every frame header must come out as it went in (same-length mask, no
// re-framing), and no message may carry the secret.

// KEYWAY_HOSTILE=long npx vitest run <this file> for the long form.
const RUNS = scale(300, 20_000);
const needles = secretNeedles({ kind: 'token', value: CANARY });
const MASKED = '*'.repeat(CANARY.length);

interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A server frame (unmasked), written here independently of the code under test. */
function encode({ fin, opcode, payload }: Frame, rsv = 0): Buffer {
  const b0 = (fin ? 0x80 : 0) | rsv | opcode;
  let head: Buffer;
  if (payload.length < 126) head = Buffer.from([b0, payload.length]);
  else if (payload.length < 65_536) {
    head = Buffer.from([b0, 126, 0, 0]);
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([head, payload]);
}

function decode(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    const b0 = bytes[at]!;
    let length = bytes[at + 1]! & 0x7f;
    let size = 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      size = 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      size = 10;
    }
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: bytes.subarray(at + size, at + size + length) });
    at += size + length;
  }
  expect(at).toBe(bytes.length);
  return frames;
}

async function throughGuard(chunks: Buffer[]): Promise<{ output: Buffer; redactions: number }> {
  const guard = new WebSocketFrameGuard(needles);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    guard,
    new Writable({
      write(chunk: Buffer, _e, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return { output: Buffer.concat(out), redactions: guard.redactions };
}

function cutAt(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...at, bytes.length]) {
    if (p > from) chunks.push(Buffer.from(bytes.subarray(from, p)));
    from = p;
  }
  return chunks;
}

/** A message (text or binary) with the secret planted at random places, cut into fragments, pings between. */
const message = fc.record({
  binary: fc.boolean(),
  parts: fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.constant(null)), { minLength: 1, maxLength: 8 }),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  pingAfter: fc.option(fc.nat(), { nil: undefined }),
});

describe('the leak guard on WebSocket frames', () => {
  it('masks the secret across fragments and TCP chunks, keeping every frame header', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 30 }), async (messages, tcpCuts) => {
        const frames: Frame[] = [];
        const expected: Buffer[] = [];
        let planted = 0;
        for (const m of messages) {
          const payload = Buffer.from(m.parts.map((p) => p ?? CANARY).join(''));
          planted += m.parts.filter((p) => p === null).length;
          expected.push(redactAll(payload, needles, 'mask').output);
          const pieces = cutAt(payload, m.cuts);
          if (pieces.length === 0) pieces.push(Buffer.alloc(0));
          pieces.forEach((piece, i) => {
            frames.push({ fin: i === pieces.length - 1, opcode: i === 0 ? (m.binary ? 2 : 1) : 0, payload: piece });
            if (m.pingAfter !== undefined && m.pingAfter % pieces.length === i) frames.push({ fin: true, opcode: 9, payload: Buffer.from('ping') });
          });
        }
        const wire = Buffer.concat(frames.map((f) => encode(f)));
        const { output, redactions } = await throughGuard(cutAt(wire, tcpCuts));
        const got = decode(output);
        // Same frames, same order, same lengths: only payload bytes changed.
        expect(got.map((f) => [f.fin, f.opcode, f.payload.length])).toEqual(frames.map((f) => [f.fin, f.opcode, f.payload.length]));
        const messagesOut: Buffer[] = [];
        let current: Buffer[] = [];
        for (const f of got) {
          if (f.opcode >= 8) continue;
          current.push(f.payload);
          if (f.fin) {
            messagesOut.push(Buffer.concat(current));
            current = [];
          }
        }
        expect(messagesOut.map((b) => b.toString())).toEqual(expected.map((b) => b.toString()));
        expect(findLeak(output, CANARY)).toBeUndefined();
        expect(redactions).toBe(planted);
      }),
      { numRuns: RUNS },
    );
  });

  it('masks the secret in a close reason and a pong, and in a 70 kB binary message (64-bit length)', async () => {
    const reason = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from(`bad token ${CANARY}`)]);
    const big = Buffer.alloc(70_000, 0x41);
    Buffer.from(CANARY).copy(big, 65_530); // across the 64 KiB mark
    const wire = Buffer.concat([
      encode({ fin: true, opcode: 2, payload: big }),
      encode({ fin: true, opcode: 10, payload: Buffer.from(CANARY) }),
      encode({ fin: true, opcode: 8, payload: reason }),
    ]);
    const { output, redactions } = await throughGuard(cutAt(wire, [1, 3, 9, 65_540, 70_005]));
    const frames = decode(output);
    expect(frames.map((f) => f.opcode)).toEqual([2, 10, 8]);
    expect(frames[0]!.payload.length).toBe(70_000);
    expect(frames[1]!.payload.toString()).toBe(MASKED);
    expect(frames[2]!.payload.subarray(2).toString()).toBe(`bad token ${MASKED}`);
    expect(findLeak(output, CANARY)).toBeUndefined();
    expect(redactions).toBe(3);
  });

  it('masks every-byte escapes, wrapped base64 and edge slices in a message cut into two frames at every position', async () => {
    const forms = canaryForms(CANARY);
    const b64 = Buffer.from(CANARY).toString('base64');
    const payloads = [
      `pct ${forms['percent, every byte']} lower ${forms['percent, every byte, lower']}`,
      `u ${forms['unicode escapes']} U ${forms['unicode escapes, upper']}`.slice(0, 300),
      `wrapped ${b64.slice(0, 13)}\r\n${b64.slice(13)} and ${b64.slice(0, 20)}\n${b64.slice(20)} end`,
      `${CANARY.slice(9)} in between ${CANARY.slice(0, 9)}`,
    ];
    for (const text of payloads) {
      const payload = Buffer.from(text);
      const expected = redactAll(payload, needles, 'mask').output;
      expect(findLeak(expected, CANARY)).toBeUndefined();
      for (let cut = 0; cut <= payload.length; cut++) {
        const wire = Buffer.concat([
          encode({ fin: false, opcode: 1, payload: payload.subarray(0, cut) }),
          encode({ fin: true, opcode: 0, payload: payload.subarray(cut) }),
        ]);
        const { output } = await throughGuard([wire]);
        const frames = decode(output);
        expect(Buffer.concat(frames.map((f) => f.payload)).equals(expected), `${text.slice(0, 20)} cut at ${cut}`).toBe(true);
      }
    }
  });

  it('does not hold a finished message back waiting for the next one', async () => {
    // The message ends with the secret's first characters, too few to count as a slice of it
    // (a longer slice is masked: leak-guard/edges.ts): it must come out whole at once.
    const half = CANARY.slice(0, 5);
    const guard = new WebSocketFrameGuard(needles);
    const out: Buffer[] = [];
    guard.on('data', (c: Buffer) => out.push(c));
    guard.write(encode({ fin: true, opcode: 1, payload: Buffer.from(`hello ${half}`) }));
    await new Promise((r) => setImmediate(r));
    expect(decode(Buffer.concat(out)).map((f) => f.payload.toString())).toEqual([`hello ${half}`]);
    guard.destroy();
  });

  it('cuts off an upstream that piles frames behind a held fragment instead of queueing them without bound', async () => {
    // A fragment ending with the start of the secret (held back), then pings and no continuation.
    const first = encode({ fin: false, opcode: 1, payload: Buffer.from(`x ${CANARY.slice(0, 10)}`) });
    const pings = Buffer.concat(Array.from({ length: 1_000 }, () => encode({ fin: true, opcode: 9, payload: Buffer.from('p') })));
    await expect(throughGuard([first, pings])).rejects.toThrow(/too many frames/);
  });

  it('refuses compressed (RSV1) and masked frames: no extension was negotiated', async () => {
    const compressed = encode({ fin: true, opcode: 1, payload: Buffer.from('xx') }, 0x40);
    await expect(throughGuard([compressed])).rejects.toThrow(/RSV/);
    const masked = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x61, 0x62]);
    await expect(throughGuard([masked])).rejects.toThrow(/masked/);
  });
});
