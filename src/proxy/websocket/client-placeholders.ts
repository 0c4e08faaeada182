import { Transform, type TransformCallback } from 'node:stream';
import { parseHeader, type FrameHeader, WebSocketProtocolError } from './frames.ts';

// Captured tokens' placeholders in the agent's WebSocket messages, agent to upstream. A placeholder
// resolves only where a credential goes (the handshake's Authorization, or a token field of a
// request keyway reads), so a message carrying one that keyway holds is refused: nothing of it goes
// upstream, and the caller closes the WebSocket (1008, audited placeholder_refused). Each data
// message, text or binary, is held whole across its fragments and TCP chunks, up to
// proxy.max_body_swap and within the agent's memory for held bodies, then searched; a message with
// none goes on exactly as it came, frame for frame. Control frames pass as they come. Past either
// bound a message goes on unsearched, as a request body past it does: a placeholder is resolved
// nowhere but in a credential position, so what goes up is a worthless string, never a token.
// Frames reach this uncompressed: the upstream leg never agrees to compression while it runs, and
// keyway's own swap (client-swap.ts, ahead of this) sends the agent's compressed messages on inflated.

const OPCODE_CONTINUATION = 0x0;
/** Empty fragments cost no bytes; their number is bounded on its own. */
const MAX_HELD_FRAMES = 1024;

export interface PlaceholderCheckOptions {
  /** Whether the text (a message's bytes as latin1) holds a placeholder keyway holds. */
  holds(text: string): boolean;
  limit: number;
  /** The agent's memory for held bodies (agent-load.ts). */
  hold(bytes: number): boolean;
  release(bytes: number): void;
}

interface HeldFrame {
  header: Buffer;
  mask: Buffer;
  payload: Buffer[];
}

type Message = { mode: 'hold'; frames: HeldFrame[]; size: number } | { mode: 'pass' };

/** Emits 'refuse' when a message holds a placeholder: nothing of it has gone on; the caller closes both sides. */
export class ClientPlaceholderCheck extends Transform {
  readonly #options: PlaceholderCheckOptions;
  #input: Buffer = Buffer.alloc(0);
  #frame: { left: number; fin: boolean; control: boolean; held: HeldFrame | undefined } | undefined;
  #message: Message | undefined;
  #reserved = 0;
  #refused = false;
  #out: Buffer[] = [];

  constructor(options: PlaceholderCheckOptions) {
    super();
    this.#options = options;
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
    if (header.rsv !== 0) throw new WebSocketProtocolError('a frame with RSV bits set that no extension explains');
    const control = (header.opcode & 0x8) !== 0;
    let held: HeldFrame | undefined;
    if (control) {
      this.#out.push(bytes);
    } else {
      const first = header.opcode !== OPCODE_CONTINUATION;
      if (first === (this.#message !== undefined)) throw new WebSocketProtocolError('a continuation frame out of place');
      if (first) this.#message = { mode: 'hold', frames: [], size: 0 };
      const before = this.#message!;
      if (before.mode === 'hold' && before.frames.length >= MAX_HELD_FRAMES) this.#overflow(before);
      const message = this.#message!;
      if (message.mode === 'hold') {
        held = { header: bytes, mask: bytes.subarray(bytes.length - 4), payload: [] };
        message.frames.push(held);
      } else this.#out.push(bytes);
    }
    this.#frame = { left: header.length, fin: header.fin, control, held };
    if (header.length === 0) this.#endFrame();
  }

  #payload(bytes: Buffer): void {
    const frame = this.#frame!;
    frame.left -= bytes.length;
    const message = this.#message;
    if (frame.held !== undefined && message?.mode === 'hold') {
      message.size += bytes.length;
      if (message.size > this.#options.limit || !this.#reserve(bytes.length)) this.#overflow(message, bytes);
      else frame.held.payload.push(Buffer.from(bytes));
    } else this.#out.push(bytes);
    if (frame.left === 0) this.#endFrame();
  }

  #endFrame(): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    if (frame.control || !frame.fin) return;
    const message = this.#message!;
    this.#message = undefined;
    if (message.mode === 'hold') this.#finish(message);
  }

  /** Past what keyway may hold: the message goes on as it came, from its first frame, unsearched. */
  #overflow(message: Extract<Message, { mode: 'hold' }>, pending?: Buffer): void {
    for (const frame of message.frames) this.#out.push(frame.header, ...frame.payload);
    if (pending) this.#out.push(pending);
    this.#message = { mode: 'pass' };
    if (this.#frame) this.#frame.held = undefined;
    this.#releaseAll();
  }

  #finish(message: Extract<Message, { mode: 'hold' }>): void {
    const text = Buffer.concat(message.frames.map(unmask)).toString('latin1');
    if (this.#options.holds(text) || (text.includes('%') && this.#options.holds(percentDecoded(text)))) {
      this.#refused = true;
      this.#releaseAll();
      this.emit('refuse');
      return;
    }
    for (const frame of message.frames) this.#out.push(frame.header, ...frame.payload);
    this.#releaseAll();
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
}

function unmask(frame: HeldFrame): Buffer {
  const payload = Buffer.concat(frame.payload);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= frame.mask[i & 3]!;
  return payload;
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
