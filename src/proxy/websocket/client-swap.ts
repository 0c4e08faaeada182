import { zlib } from '../../builtins.ts';
import { type BodySwapOutcome, swapMessage } from '../../credentials/body-swap/index.ts';
import {
  AgentFrameReader,
  type HeldBodyMemory,
  type HeldFrame,
  heldFrame,
  MAX_HELD_FRAMES,
  maskedFrame,
  unmaskedPayload,
} from '../websocket-frames/agent-frames.ts';
import type { AgentDeflate } from './deflate-offer.ts';
import { type FrameHeader, isControl, WebSocketProtocolError } from '../websocket-frames/frame-reader.ts';

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
/** The deflate window: the last 32 KiB the agent's compressor may refer back to. */
const WINDOW = 32 * 1024;
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface MessageSwapOptions extends HeldBodyMemory {
  placeholder: string;
  secret: string;
  /** inject.body.fields: only JSON members of these names are swapped in (undefined: any). */
  fields?: ReadonlySet<string> | undefined;
  limit: number;
  /** What was agreed with the agent, if it offered permessage-deflate. */
  deflate: AgentDeflate | undefined;
}

type Message = { mode: 'hold'; opcode: number; compressed: boolean; frames: HeldFrame[]; size: number } | { mode: 'pass' };

/** Emits 'refuse' (outcome) when a message can be neither swapped nor passed on: the caller closes both sides. */
export class ClientMessageSwap extends AgentFrameReader {
  readonly #options: MessageSwapOptions;
  /** Where the current frame's payload goes: kept with its held message, or (undefined) sent on. */
  #held: HeldFrame | undefined;
  #message: Message | undefined;
  #window: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  #refused = false;
  readonly #outcomes = new Map<BodySwapOutcome, number>();

  constructor(options: MessageSwapOptions) {
    super(options);
    this.#options = options;
  }

  /** For the audit line: the most telling outcome over the messages, and how many were swapped. */
  summary(): { body_swap: BodySwapOutcome; body_swaps: number } | undefined {
    if (this.#outcomes.size === 0) return undefined;
    const order: BodySwapOutcome[] = ['too_large', 'not_parsed', 'no_memory', 'swapped', 'none'];
    const body_swap = order.find((o) => this.#outcomes.has(o)) ?? 'none';
    return { body_swap, body_swaps: this.#outcomes.get('swapped') ?? 0 };
  }

  protected override get stopped(): boolean {
    return this.#refused;
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    this.#held = undefined;
    if (!header.masked) throw new WebSocketProtocolError('an unmasked frame from the agent');
    const rsv1 = (header.rsv & 0x40) !== 0;
    if ((header.rsv & 0x30) !== 0 || (rsv1 && this.#options.deflate === undefined)) {
      throw new WebSocketProtocolError('a frame with RSV bits set that no extension explains');
    }
    if (isControl(header)) {
      if (rsv1) throw new WebSocketProtocolError('a compressed control frame');
      this.send(bytes);
    } else {
      const first = header.opcode !== OPCODE_CONTINUATION;
      if (first === (this.#message !== undefined)) throw new WebSocketProtocolError('a continuation frame out of place');
      if (!first && rsv1) throw new WebSocketProtocolError('RSV1 on a continuation frame');
      if (first) {
        this.#message =
          header.opcode === OPCODE_TEXT || rsv1 ? { mode: 'hold', opcode: header.opcode, compressed: rsv1, frames: [], size: 0 } : { mode: 'pass' };
      }
      const message = this.#message!;
      if (message.mode === 'hold') {
        if (message.frames.length >= MAX_HELD_FRAMES) this.#overflow(message, 'too_large');
        else {
          this.#held = heldFrame(bytes);
          message.frames.push(this.#held);
        }
      }
      if (this.#held === undefined && !this.#refused) this.send(bytes);
    }
  }

  protected override framePayload(bytes: Buffer): void {
    const message = this.#message;
    if (this.#held && message?.mode === 'hold') {
      message.size += bytes.length;
      if (message.size > this.#options.limit) this.#overflow(message, 'too_large', bytes);
      else if (!this.reserve(bytes.length)) this.#overflow(message, 'no_memory', bytes);
      else this.#held.payload.push(Buffer.from(bytes));
    } else if (!this.#refused) {
      this.send(bytes);
    }
  }

  protected override frameEnd(header: FrameHeader): void {
    this.#held = undefined;
    if (isControl(header) || !header.fin) return;
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
    this.sendAsTheyCame(message.frames);
    if (pending) this.send(pending);
    this.#message = { mode: 'pass' };
    this.#held = undefined;
    this.releaseAll();
  }

  #finish(message: Extract<Message, { mode: 'hold' }>): void {
    let payload: Buffer<ArrayBufferLike> = unmaskedPayload(message.frames);
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
    if (swapped || message.compressed) this.send(maskedFrame(message.opcode, payload));
    else this.sendAsTheyCame(message.frames);
    this.releaseAll();
  }

  /** Bounded: past the limit (a compression bomb) or on bytes that do not inflate, refused. */
  #inflate(compressed: Buffer): Buffer | undefined {
    const takeover = !this.#options.deflate!.noContextTakeover;
    let output: Buffer<ArrayBufferLike>;
    try {
      output = zlib().inflateRawSync(Buffer.concat([compressed, DEFLATE_TAIL]), {
        finishFlush: zlib().constants.Z_SYNC_FLUSH,
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

  #count(outcome: BodySwapOutcome): void {
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
  }

  #refuse(outcome: BodySwapOutcome): void {
    this.#refused = true;
    this.releaseAll();
    this.emit('refuse', outcome);
  }
}
