import { randomFillSync } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, inflateRawSync } from 'node:zlib';
import { type BodySwapOutcome, swapMessage } from '../../credentials/body-swap/index.ts';
import type { AgentDeflate } from './deflate-offer.ts';
import { parseHeader, type FrameHeader, WebSocketProtocolError } from './frames.ts';

// The body swap on a WebSocket, agent to upstream (RFC 6455 5.2: client frames are masked). A text
// message, or any message the agent compressed (permessage-deflate, deflate-offer.ts), is held
// whole across its fragments (continuations) and TCP chunks, up to proxy.max_body_swap bytes and
// within the agent's memory for held bodies, then the grant's placeholder is swapped and the message
// goes on as one frame, uncompressed, masked again. A message with nothing swapped that was not
// compressed goes on exactly as it came. Control frames (which may come between fragments) and
// uncompressed binary messages pass as they come.
// Past the bound an uncompressed text message goes on unswapped; a compressed one cannot (the
// upstream leg has no compression to carry it), so the connection is closed: body_swap too_large.
// Inflating is bounded too (maxOutputLength): a compression bomb stops at the bound.

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
/** Empty fragments cost no bytes; their number is bounded on its own. */
const MAX_HELD_FRAMES = 1024;
/** The deflate window: the last 32 KiB the agent's compressor may refer back to. */
const WINDOW = 32 * 1024;
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface MessageSwapOptions {
  placeholder: string;
  secret: string;
  /** inject.body.fields: only JSON members of these names are swapped in (undefined: any). */
  fields?: ReadonlySet<string> | undefined;
  limit: number;
  /** What was agreed with the agent, if it offered permessage-deflate. */
  deflate: AgentDeflate | undefined;
  /** The agent's memory for held bodies (agent-load.ts). */
  hold(bytes: number): boolean;
  release(bytes: number): void;
}

interface HeldFrame {
  header: Buffer;
  mask: Buffer;
  payload: Buffer[];
}

type Message = { mode: 'hold'; opcode: number; compressed: boolean; frames: HeldFrame[]; size: number } | { mode: 'pass' };

/** Emits 'refuse' (outcome) when a message can be neither swapped nor passed on: the caller closes both sides. */
export class ClientMessageSwap extends Transform {
  readonly #options: MessageSwapOptions;
  #input: Buffer = Buffer.alloc(0);
  /** The frame being read: what is left of its payload, and where its bytes go. */
  #frame: { left: number; control: boolean; held: HeldFrame | undefined } | undefined;
  #message: Message | undefined;
  #reserved = 0;
  #window: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  #refused = false;
  #out: Buffer[] = [];
  readonly #outcomes = new Map<BodySwapOutcome, number>();

  constructor(options: MessageSwapOptions) {
    super();
    this.#options = options;
  }

  /** For the audit line: the most telling outcome over the messages, and how many were swapped. */
  summary(): { body_swap: BodySwapOutcome; body_swaps: number } | undefined {
    if (this.#outcomes.size === 0) return undefined;
    const order: BodySwapOutcome[] = ['too_large', 'not_parsed', 'no_memory', 'swapped', 'none'];
    const body_swap = order.find((o) => this.#outcomes.has(o)) ?? 'none';
    return { body_swap, body_swaps: this.#outcomes.get('swapped') ?? 0 };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#refused) return done();
    try {
      this.#read(chunk);
    } catch (err) {
      this.#releaseAll();
      return done(err as Error);
    }
    const out = this.#out;
    this.#out = [];
    done(null, out.length === 0 ? undefined : out.length === 1 ? out[0] : Buffer.concat(out));
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.#releaseAll();
    done(err);
  }

  #read(chunk: Buffer): void {
    let data = this.#input.length ? Buffer.concat([this.#input, chunk]) : chunk;
    this.#input = Buffer.alloc(0);
    while (data.length > 0 && !this.#refused) {
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
    if (!header.masked) throw new WebSocketProtocolError('an unmasked frame from the agent');
    const rsv1 = (header.rsv & 0x40) !== 0;
    if ((header.rsv & 0x30) !== 0 || (rsv1 && this.#options.deflate === undefined)) {
      throw new WebSocketProtocolError('a frame with RSV bits set that no extension explains');
    }
    const control = (header.opcode & 0x8) !== 0;
    if (control) {
      if (rsv1) throw new WebSocketProtocolError('a compressed control frame');
      this.#out.push(bytes);
      this.#frame = { left: header.length, control: true, held: undefined };
    } else {
      const first = header.opcode !== OPCODE_CONTINUATION;
      if (first === (this.#message !== undefined)) throw new WebSocketProtocolError('a continuation frame out of place');
      if (!first && rsv1) throw new WebSocketProtocolError('RSV1 on a continuation frame');
      if (first) {
        this.#message =
          header.opcode === OPCODE_TEXT || rsv1 ? { mode: 'hold', opcode: header.opcode, compressed: rsv1, frames: [], size: 0 } : { mode: 'pass' };
      }
      const message = this.#message!;
      let held: HeldFrame | undefined;
      if (message.mode === 'hold') {
        if (message.frames.length >= MAX_HELD_FRAMES) this.#overflow(message, 'too_large');
        else {
          held = { header: bytes, mask: bytes.subarray(bytes.length - 4), payload: [] };
          message.frames.push(held);
        }
      }
      if (held === undefined && !this.#refused) this.#out.push(bytes);
      this.#frame = { left: header.length, control: false, held };
    }
    if (header.length === 0) this.#endFrame(header.fin);
    else this.#lastFin = header.fin;
  }

  #lastFin = false;

  #payload(bytes: Buffer): void {
    const frame = this.#frame!;
    frame.left -= bytes.length;
    const message = this.#message;
    if (frame.held && message?.mode === 'hold') {
      message.size += bytes.length;
      if (message.size > this.#options.limit) this.#overflow(message, 'too_large', bytes);
      else if (!this.#reserve(bytes.length)) this.#overflow(message, 'no_memory', bytes);
      else frame.held.payload.push(Buffer.from(bytes));
    } else if (!this.#refused) {
      this.#out.push(bytes);
    }
    if (frame.left === 0) this.#endFrame(this.#lastFin);
  }

  #endFrame(fin: boolean): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    if (frame.control || !fin) return;
    const message = this.#message!;
    this.#message = undefined;
    if (message.mode === 'hold') this.#finish(message);
  }

  /**
   * The message is past what keyway may hold: an uncompressed one goes on as it came, from its
   * first held frame (`pending`: bytes of the current frame not yet kept); a compressed one is refused.
   */
  #overflow(message: Extract<Message, { mode: 'hold' }>, outcome: BodySwapOutcome, pending?: Buffer): void {
    this.#count(outcome);
    if (message.compressed) return this.#refuse(outcome);
    for (const frame of message.frames) this.#out.push(frame.header, ...frame.payload);
    if (pending) this.#out.push(pending);
    this.#message = { mode: 'pass' };
    if (this.#frame) this.#frame.held = undefined;
    this.#releaseAll();
  }

  #finish(message: Extract<Message, { mode: 'hold' }>): void {
    let payload: Buffer<ArrayBufferLike> = Buffer.concat(message.frames.map(unmask));
    if (message.compressed) {
      const inflated = this.#inflate(payload);
      if (inflated === undefined) return;
      payload = inflated;
    }
    let swapped = false;
    if (message.opcode === OPCODE_TEXT) {
      const result = swapMessage(payload, this.#options.placeholder, this.#options.secret, this.#options.fields);
      this.#count(result.outcome);
      swapped = result.outcome === 'swapped';
      payload = result.bytes;
    }
    if (swapped || message.compressed) this.#out.push(maskedFrame(message.opcode, payload));
    else for (const frame of message.frames) this.#out.push(frame.header, ...frame.payload);
    this.#releaseAll();
  }

  /** Bounded: past the limit (a compression bomb) or on bytes that do not inflate, refused. */
  #inflate(compressed: Buffer): Buffer | undefined {
    const takeover = !this.#options.deflate!.noContextTakeover;
    let output: Buffer<ArrayBufferLike>;
    try {
      output = inflateRawSync(Buffer.concat([compressed, DEFLATE_TAIL]), {
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: this.#options.limit,
        ...(takeover && this.#window.length > 0 ? { dictionary: this.#window } : {}),
      });
    } catch (err) {
      const outcome: BodySwapOutcome = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'too_large' : 'not_parsed';
      this.#count(outcome);
      this.#refuse(outcome);
      return undefined;
    }
    if (takeover) {
      const joined = output.length >= WINDOW ? output : Buffer.concat([this.#window, output]);
      this.#window = Buffer.from(joined.subarray(Math.max(0, joined.length - WINDOW)));
    }
    return output;
  }

  #reserve(bytes: number): boolean {
    if (!this.#options.hold(bytes)) return false;
    this.#reserved += bytes;
    return true;
  }

  #releaseAll(): void {
    if (this.#reserved === 0) return;
    this.#options.release(this.#reserved);
    this.#reserved = 0;
  }

  #count(outcome: BodySwapOutcome): void {
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
  }

  #refuse(outcome: BodySwapOutcome): void {
    this.#refused = true;
    this.#releaseAll();
    this.emit('refuse', outcome);
  }
}

function unmask(frame: HeldFrame): Buffer {
  const payload = Buffer.concat(frame.payload);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= frame.mask[i & 3]!;
  return payload;
}

/** One whole client frame (FIN, no RSV bits), masked with a fresh key as RFC 6455 5.3 asks. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(size + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomFillSync(Buffer.allocUnsafe(4));
  mask.copy(frame, size);
  for (let i = 0; i < length; i++) frame[size + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}
