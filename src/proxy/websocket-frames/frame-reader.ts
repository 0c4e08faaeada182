import { Transform, type TransformCallback } from 'node:stream';

// RFC 6455 5.2 framing, read once for every WebSocket stream keyway looks into: the relay's leak
// guard (websocket/upstream-guard.ts) and body swap (websocket/client-swap.ts), and the socket taps'
// readers (stages/hooks.ts). Each is a FrameReader: it is handed every frame's header, its payload in
// the pieces the TCP chunks cut it into, and its end, in wire order, and decides what goes out.

export class WebSocketProtocolError extends Error {
  override readonly name = 'WebSocketProtocolError';
}

export interface FrameHeader {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  length: number;
  /** Header bytes, mask key included. */
  size: number;
  bytes: Buffer;
}

/** Whether the frame is a control frame (close, ping, pong: opcodes 0x8 and up). */
export function isControl(header: FrameHeader): boolean {
  return (header.opcode & 0x8) !== 0;
}

/**
 * A WebSocket byte stream read frame by frame, however it is cut into chunks. What a subclass sends
 * while one chunk is read leaves as one chunk; a subclass that throws ends the stream with that error.
 * A subclass can hold what it sends after a point until a verdict comes (`holdUntil`): the chunk is
 * not done until then, so later chunks wait in the stream's buffer (its backpressure), never here.
 */
export abstract class FrameReader extends Transform {
  /** The start of a frame header that the next chunk completes. */
  #input: Buffer = Buffer.alloc(0);
  /** The frame being read and its payload bytes still to come. */
  #frame: { header: FrameHeader; left: number } | undefined;
  #out: Buffer[] = [];
  /** Verdicts that hold what was sent after them in this chunk (at: its place in #out). */
  #holds: Array<{ at: number; verdict: Promise<boolean> }> = [];
  /** A held verdict said stop: nothing more goes, whatever the subclass says. */
  #halted = false;

  /** A frame starts: `bytes` is a copy of its header, the subclass's to keep or send. */
  protected abstract frameStart(header: FrameHeader, bytes: Buffer): void;
  /** The next piece of the current frame's payload: a view into the chunk, copied if kept. */
  protected abstract framePayload(bytes: Buffer, header: FrameHeader): void;
  /** The current frame's payload is all read (at once after frameStart for an empty frame). */
  protected abstract frameEnd(header: FrameHeader): void;

  /** True once the subclass has refused the stream: nothing more is read, what comes is dropped. */
  protected get stopped(): boolean {
    return false;
  }

  /** Reading threw: the subclass lets go of what it holds before the stream errors. */
  protected failed(): void {}

  protected send(bytes: Buffer): void {
    this.#out.push(bytes);
  }

  /**
   * What is sent from here on waits for `verdict`: false lets it go, true (or a failure to decide)
   * stops the stream, and what waited is dropped.
   */
  protected holdUntil(verdict: Promise<boolean>): void {
    this.#holds.push({ at: this.#out.length, verdict });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#halted || this.stopped) return done();
    try {
      this.#read(chunk);
    } catch (err) {
      this.failed();
      return done(err as Error);
    }
    const out = this.#out;
    this.#out = [];
    if (this.#holds.length === 0) return done(null, joined(out, 0, out.length));
    const holds = this.#holds;
    this.#holds = [];
    this.#release(out, holds, 0, done);
  }

  /** Passes on out's pieces up to each held verdict, then waits for it: in order, one verdict at a time. */
  #release(out: Buffer[], holds: Array<{ at: number; verdict: Promise<boolean> }>, from: number, done: TransformCallback): void {
    const next = holds.shift();
    if (next === undefined) return done(null, joined(out, from, out.length));
    const before = joined(out, from, next.at);
    if (before !== undefined) this.push(before);
    next.verdict.then(
      (stop) => {
        if (!stop) return this.#release(out, holds, next.at, done);
        this.#halted = true;
        done();
      },
      () => {
        this.#halted = true;
        done();
      },
    );
  }

  #read(chunk: Buffer): void {
    let data = this.#input.length ? Buffer.concat([this.#input, chunk]) : chunk;
    this.#input = Buffer.alloc(0);
    while (data.length > 0 && !this.stopped) {
      if (!this.#frame) {
        const header = parseHeader(data);
        if (!header) {
          this.#input = Buffer.from(data);
          return;
        }
        data = data.subarray(header.size);
        this.#frame = { header, left: header.length };
        this.frameStart(header, Buffer.from(header.bytes));
        if (header.length === 0) this.#endFrame();
        continue;
      }
      const frame = this.#frame;
      const take = Math.min(frame.left, data.length);
      frame.left -= take;
      this.framePayload(data.subarray(0, take), frame.header);
      if (frame.left === 0) this.#endFrame();
      data = data.subarray(take);
    }
  }

  #endFrame(): void {
    const { header } = this.#frame!;
    this.#frame = undefined;
    this.frameEnd(header);
  }
}

/** out[from..to) as one Buffer, or undefined when empty. */
function joined(out: Buffer[], from: number, to: number): Buffer | undefined {
  if (to <= from) return undefined;
  return to - from === 1 ? out[from] : Buffer.concat(out.slice(from, to));
}

/** A frame header from the start of `data`, or undefined until all of its bytes are there. */
export function parseHeader(data: Buffer): FrameHeader | undefined {
  if (data.length < 2) return undefined;
  const b0 = data[0]!;
  const b1 = data[1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let size = 2;
  if (length === 126) {
    if (data.length < 4) return undefined;
    length = data.readUInt16BE(2);
    size = 4;
  } else if (length === 127) {
    if (data.length < 10) return undefined;
    const big = data.readBigUInt64BE(2);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new WebSocketProtocolError('a frame longer than 2^53 bytes');
    length = Number(big);
    size = 10;
  }
  if (masked) size += 4;
  if (data.length < size) return undefined;
  return { fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, length, size, bytes: data.subarray(0, size) };
}
