import { Transform, type TransformCallback } from 'node:stream';
import type { HeldNeedles } from '../leak-guard/held.ts';
import { MessageScan } from '../leak-guard/message-scan.ts';

// The leak guard on a WebSocket, upstream to agent (RFC 6455 5.2: server frames are unmasked).
// Each needle in a message's payload becomes as many '*': lengths hold, so every frame header goes
// out as it came and nothing is re-framed. Text and binary messages alike: an echo can be either.
// A message is scanned as one stream across its frames (continuations) and across TCP chunks; a
// tail that could begin a needle waits for the next frame of the same message, never for the next
// message, so a finished message is never held. Control frames (close reasons, pongs) are scanned
// whole. keyway strips the Sec-WebSocket-Extensions offer when it injects a secret (websocket/forwarder.ts),
// so a frame with an RSV bit set, like a masked one, is a protocol error: the connection is closed.

const OPCODE_CONTINUATION = 0x0;
const MAX_CONTROL_PAYLOAD = 125;
// Frames wait in #slots only behind a fragment whose last bytes the scanner holds (at most a
// needle's length), until the next fragment arrives. An upstream that sends pings or empty
// fragments there without end would grow the queue without bound: past this, it is cut off.
const MAX_WAITING_FRAMES = 256;

/** One frame on its way out, in wire order. */
type Slot = { kind: 'data'; header: Buffer; headerSent: boolean; remaining: number } | { kind: 'control'; frame: Buffer };

export class WebSocketProtocolError extends Error {
  override readonly name = 'WebSocketProtocolError';
}

export class WebSocketFrameGuard extends Transform {
  readonly #needles: readonly Buffer[];
  /** The real values keyway holds for the agent: looked for in every message too. */
  readonly #held: HeldNeedles | undefined;
  #scanner: MessageScan;
  /** Redactions in finished messages; the current one's are in #scanner. */
  #counted = 0;
  #input: Buffer = Buffer.alloc(0);
  /** The frame being read: its opcode, FIN bit and payload bytes still to come. */
  #frame: { opcode: number; fin: boolean; left: number } | undefined;
  #control: Buffer[] = [];
  #inMessage = false;
  readonly #slots: Slot[] = [];
  #out: Buffer[] = [];

  constructor(needles: readonly Buffer[], held?: HeldNeedles | undefined) {
    super();
    this.#needles = needles;
    this.#held = held;
    this.#scanner = new MessageScan(needles, held, 'mask');
  }

  get redactions(): number {
    return this.#counted + this.#scanner.redactions;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.#read(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    const out = this.#out;
    this.#out = [];
    done(null, out.length === 0 ? undefined : out.length === 1 ? out[0] : Buffer.concat(out));
  }

  override _flush(done: TransformCallback): void {
    // The upstream closed mid-frame or mid-message: what is held was never a whole needle, but the
    // frame it belongs to can no longer be completed either; the agent sees the connection end.
    done();
  }

  #read(chunk: Buffer): void {
    let data = this.#input.length ? Buffer.concat([this.#input, chunk]) : chunk;
    this.#input = Buffer.alloc(0);
    while (data.length > 0) {
      if (!this.#frame) {
        const header = parseHeader(data);
        if (!header) {
          this.#input = Buffer.from(data);
          return;
        }
        data = data.subarray(header.size);
        this.#startFrame(header, Buffer.from(header.bytes));
        continue;
      }
      const take = Math.min(this.#frame.left, data.length);
      this.#payload(data.subarray(0, take));
      data = data.subarray(take);
    }
  }

  #startFrame(header: FrameHeader, bytes: Buffer): void {
    if (header.rsv !== 0) throw new WebSocketProtocolError('a frame with RSV bits set, and no extension was negotiated');
    if (header.masked) throw new WebSocketProtocolError('a masked frame from the server');
    const control = (header.opcode & 0x8) !== 0;
    if (control) {
      if (!header.fin || header.length > MAX_CONTROL_PAYLOAD) throw new WebSocketProtocolError('a fragmented or oversized control frame');
      this.#control = [bytes];
    } else {
      if ((header.opcode === OPCODE_CONTINUATION) !== this.#inMessage) throw new WebSocketProtocolError('a continuation frame out of place');
      this.#inMessage = !header.fin;
      this.#slots.push({ kind: 'data', header: bytes, headerSent: false, remaining: header.length });
    }
    if (this.#slots.length > MAX_WAITING_FRAMES) throw new WebSocketProtocolError('too many frames waiting behind a fragment');
    this.#frame = { opcode: header.opcode, fin: header.fin, left: header.length };
    if (header.length === 0) this.#endFrame();
    else this.#pump(undefined);
  }

  #payload(bytes: Buffer): void {
    const frame = this.#frame!;
    frame.left -= bytes.length;
    if (frame.opcode & 0x8) this.#control.push(Buffer.from(bytes));
    else this.#pump(this.#scanner.push(bytes));
    if (frame.left === 0) this.#endFrame();
  }

  #endFrame(): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    if (frame.opcode & 0x8) {
      const [header, ...payload] = this.#control;
      const scanner = new MessageScan(this.#needles, this.#held, 'mask');
      const body = Buffer.concat([scanner.push(Buffer.concat(payload)), scanner.end()]);
      this.#counted += scanner.redactions;
      this.#slots.push({ kind: 'control', frame: Buffer.concat([header!, body]) });
      this.#control = [];
      this.#pump(undefined);
    } else if (frame.fin) {
      // The message is whole: what the scanner held was not a needle.
      this.#pump(this.#scanner.end());
      this.#counted += this.#scanner.redactions;
      this.#scanner = new MessageScan(this.#needles, this.#held, 'mask');
    }
  }

  /** Sends what can go: frames in wire order, each data frame's payload as the scanner lets it out. */
  #pump(payload: Buffer | undefined): void {
    let bytes = payload ?? Buffer.alloc(0);
    while (this.#slots.length > 0) {
      const slot = this.#slots[0]!;
      if (slot.kind === 'control') {
        this.#out.push(slot.frame);
        this.#slots.shift();
        continue;
      }
      if (!slot.headerSent) {
        this.#out.push(slot.header);
        slot.headerSent = true;
      }
      const take = Math.min(slot.remaining, bytes.length);
      if (take > 0) {
        this.#out.push(bytes.subarray(0, take));
        bytes = bytes.subarray(take);
        slot.remaining -= take;
      }
      if (slot.remaining > 0) break;
      this.#slots.shift();
    }
    if (bytes.length > 0) throw new Error('websocket guard: payload bytes with no frame to carry them');
  }
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
