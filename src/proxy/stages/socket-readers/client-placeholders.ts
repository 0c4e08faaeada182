import { AgentFrameReader, type HeldBodyMemory, type HeldFrame, heldFrame, MAX_HELD_FRAMES, unmaskedPayload } from '../../websocket-frames/agent-frames.ts';
import { type FrameHeader, isControl, WebSocketProtocolError } from '../../websocket-frames/frame-reader.ts';

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

export interface PlaceholderCheckOptions extends HeldBodyMemory {
  /** Whether the text (a message's bytes as latin1) holds a placeholder keyway holds. */
  holds(text: string): boolean;
  limit: number;
}

type Message = { mode: 'hold'; frames: HeldFrame[]; size: number } | { mode: 'pass' };

/** Emits 'refuse' when a message holds a placeholder: nothing of it has gone on; the caller closes both sides. */
export class ClientPlaceholderCheck extends AgentFrameReader {
  readonly #options: PlaceholderCheckOptions;
  /** Where the current frame's payload goes: kept with its held message, or (undefined) sent on. */
  #held: HeldFrame | undefined;
  #message: Message | undefined;
  #refused = false;

  constructor(options: PlaceholderCheckOptions) {
    super(options);
    this.#options = options;
  }

  protected override get stopped(): boolean {
    return this.#refused;
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    this.#held = undefined;
    if (!header.masked) throw new WebSocketProtocolError('an unmasked frame from the agent');
    if (header.rsv !== 0) throw new WebSocketProtocolError('a frame with RSV bits set that no extension explains');
    if (isControl(header)) {
      this.send(bytes);
    } else {
      const first = header.opcode !== OPCODE_CONTINUATION;
      if (first === (this.#message !== undefined)) throw new WebSocketProtocolError('a continuation frame out of place');
      if (first) this.#message = { mode: 'hold', frames: [], size: 0 };
      const before = this.#message!;
      if (before.mode === 'hold' && before.frames.length >= MAX_HELD_FRAMES) this.#overflow(before);
      const message = this.#message!;
      if (message.mode === 'hold') {
        this.#held = heldFrame(bytes);
        message.frames.push(this.#held);
      } else this.send(bytes);
    }
  }

  protected override framePayload(bytes: Buffer): void {
    const message = this.#message;
    if (this.#held !== undefined && message?.mode === 'hold') {
      message.size += bytes.length;
      if (message.size > this.#options.limit || !this.reserve(bytes.length)) this.#overflow(message, bytes);
      else this.#held.payload.push(Buffer.from(bytes));
    } else this.send(bytes);
  }

  protected override frameEnd(header: FrameHeader): void {
    this.#held = undefined;
    if (isControl(header) || !header.fin) return;
    const message = this.#message!;
    this.#message = undefined;
    if (message.mode === 'hold') this.#finish(message);
  }

  /** Past what keyway may hold: the message goes on as it came, from its first frame, unsearched. */
  #overflow(message: Extract<Message, { mode: 'hold' }>, pending?: Buffer): void {
    this.sendAsTheyCame(message.frames);
    if (pending) this.send(pending);
    this.#message = { mode: 'pass' };
    this.#held = undefined;
    this.releaseAll();
  }

  #finish(message: Extract<Message, { mode: 'hold' }>): void {
    const text = unmaskedPayload(message.frames).toString('latin1');
    if (this.#options.holds(text) || (text.includes('%') && this.#options.holds(percentDecoded(text)))) {
      this.#refused = true;
      this.releaseAll();
      this.emit('refuse');
      return;
    }
    this.sendAsTheyCame(message.frames);
    this.releaseAll();
  }
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
