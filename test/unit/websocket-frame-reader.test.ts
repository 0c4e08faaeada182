import { describe, expect, it } from 'vitest';
import { type FrameHeader, FrameReader } from '../../src/proxy/websocket-frames/frame-reader.ts';

// The one frame loop under the leak guard, the body swap and the placeholder check: however the
// TCP chunks cut the stream (inside a header, a 16- or 64-bit length, a mask key, a payload), a
// reader is told of every frame's start, all of its payload in order, and its end, once each.

interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  mask?: Buffer;
}

/** A frame written here independently of the code under test. */
function encode({ fin, opcode, payload, mask }: Frame): Buffer {
  const b0 = (fin ? 0x80 : 0) | opcode;
  const m = mask ? 0x80 : 0;
  let head: Buffer;
  if (payload.length < 126) head = Buffer.from([b0, m | payload.length]);
  else if (payload.length < 65_536) {
    head = Buffer.from([b0, m | 126, 0, 0]);
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = m | 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([head, mask ?? Buffer.alloc(0), payload]);
}

/** Records what it is told and sends nothing. */
class Recorder extends FrameReader {
  readonly events: string[] = [];
  #payload: Buffer[] = [];

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    this.events.push(`start ${header.opcode} fin=${header.fin} masked=${header.masked} length=${header.length} header=${bytes.toString('hex')}`);
  }

  protected override framePayload(bytes: Buffer): void {
    this.#payload.push(Buffer.from(bytes));
  }

  protected override frameEnd(header: FrameHeader): void {
    this.events.push(`payload ${Buffer.concat(this.#payload).toString('hex')}`, `end ${header.opcode}`);
    this.#payload = [];
  }
}

function expected(frames: Frame[]): string[] {
  return frames.flatMap((f) => {
    const whole = encode(f);
    const head = whole.subarray(0, whole.length - f.payload.length);
    return [
      `start ${f.opcode} fin=${f.fin} masked=${f.mask !== undefined} length=${f.payload.length} header=${head.toString('hex')}`,
      `payload ${f.payload.toString('hex')}`,
      `end ${f.opcode}`,
    ];
  });
}

/**
 * Feeds `frames` cut at `cuts` and returns what the reader was told. After each chunk, every frame
 * whose last byte has come has ended: none waits for the next chunk (an empty frame ending a chunk
 * would otherwise end only when more arrives, or never).
 */
function read(frames: Frame[], cuts: number[]): string[] {
  const encoded = frames.map(encode);
  const wire = Buffer.concat(encoded);
  const ends: number[] = [];
  encoded.reduce((at, frame) => {
    ends.push(at + frame.length);
    return at + frame.length;
  }, 0);
  const reader = new Recorder();
  reader.on('data', () => {});
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    reader.write(wire.subarray(at, cut));
    at = cut;
    const ended = reader.events.filter((e) => e.startsWith('end')).length;
    expect(ended, `frames ended after ${cut} bytes`).toBe(ends.filter((end) => end <= cut).length);
  }
  return reader.events;
}

const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
const FRAMES: Frame[] = [
  { fin: false, opcode: 0x1, payload: Buffer.from('hello, ') },
  { fin: true, opcode: 0x9, payload: Buffer.alloc(0) },
  { fin: false, opcode: 0x0, payload: Buffer.alloc(0) },
  { fin: true, opcode: 0x0, payload: Buffer.alloc(300, 7), mask },
  { fin: true, opcode: 0x2, payload: Buffer.alloc(70_000, 9) },
  { fin: true, opcode: 0x8, payload: Buffer.from([0x03, 0xe8]), mask },
];

describe('FrameReader', () => {
  const want = expected(FRAMES);

  it('tells of every frame, empty ones too, from one chunk', () => {
    expect(read(FRAMES, [])).toEqual(want);
  });

  it('tells the same however the stream is cut in two, at every byte up to the big frame', () => {
    for (let cut = 1; cut < 400; cut++) expect(read(FRAMES, [cut]), `cut at ${cut}`).toEqual(want);
  });

  it('tells the same when the stream comes a byte at a time', () => {
    const small = FRAMES.filter((f) => f.payload.length < 1000);
    const length = Buffer.concat(small.map(encode)).length;
    const cuts = Array.from({ length: length - 1 }, (_, i) => i + 1);
    expect(read(small, cuts)).toEqual(expected(small));
  });

  it('cut inside a 64-bit length and inside the big payload', () => {
    const start = Buffer.concat(FRAMES.slice(0, 4).map(encode)).length;
    expect(read(FRAMES, [start + 5, start + 10 + 30_000, start + 10 + 69_999])).toEqual(want);
  });
});
