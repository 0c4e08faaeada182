import { type FrameHeader, FrameReader, isControl } from '../../websocket-frames/frame-reader.ts';

// The agent's side of a socket on a model host (issue 63, 85). Codex asks for each response with a
// message (`response.create`) on a socket that may sit open for the whole session, so the
// handshake's check is not enough: a socket opened while the budget had room would get one more
// response after the budget was used elsewhere (over HTTP, on another socket), one per open socket;
// one opened before a budget was added by reload would get any number. So each message the agent
// starts is checked first, against the budgets that apply then: over a budget (or, for a socket
// keyway does not meter, under any budget), nothing of it goes upstream and the socket is closed
// (the caller's check closes it, 1008). Control frames and the rest of a message already admitted
// pass as they came.
//
// A check that must ask the primary process (proxy.workers) answers later: the message, and all
// the agent sends after it, wait for the answer (FrameReader.holdUntil); over, or no answer, and
// none of it goes upstream.
//
// Budget or not, each message's size is told to the meter: a response cut short before it names its
// input has its input estimated from the message that asked for it.
//
// With a reader (`MessageRead`: model-socket.ts), each data message is also read as it passes (its
// payload unmasked as the server will), and the last piece of its last frame is held until the
// reader has judged it whole: a message it refuses never reaches the server whole, so the server
// has nothing to answer or bill (issue 85: a response that continues a conversation keyway never
// saw, or a message it cannot read as the server does).

const OPCODE_CONTINUATION = 0x0;

/** True when a budget on the socket is used up (the caller has closed it); a promise under workers. */
export type MessageCheck = () => boolean | Promise<boolean>;

/** Reads each data message the agent sends; `end` says whether to refuse it (the caller has closed the socket). */
export interface MessageRead {
  /** A data message starts; true refuses it at once (a compressed message under a budget). */
  start(header: FrameHeader): boolean;
  /** The next piece of its payload, unmasked. */
  push(bytes: Buffer): void;
  /** It is whole: true refuses it (its last piece is dropped). */
  end(): boolean;
}

export class ModelMessageGate extends FrameReader {
  readonly #over: MessageCheck;
  readonly #sized: (bytes: number) => void;
  readonly #read: MessageRead | undefined;
  #refused = false;
  /** Payload bytes of the data message being passed on. */
  #size = 0;
  /** The current frame's mask key and how far into its payload the reading is (unmasking). */
  #mask: Buffer | undefined;
  #maskAt = 0;
  /** The last payload piece of a message's final frame, held until the reader has judged the message. */
  #held: Buffer | undefined;

  /**
   * `over`: the budget check, asked as each data message starts; `sized`: each data message's size
   * once it has passed; `read`: reads each data message before its last byte goes (none: passed unread).
   */
  constructor(over: MessageCheck, sized: (bytes: number) => void, read?: MessageRead) {
    super();
    this.#over = over;
    this.#sized = sized;
    this.#read = read;
  }

  protected override get stopped(): boolean {
    return this.#refused;
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    if (!isControl(header) && header.opcode !== OPCODE_CONTINUATION) {
      this.#size = 0;
      const over = this.#over();
      if (over === true || this.#read?.start(header) === true) {
        this.#refused = true;
        return;
      }
      if (over instanceof Promise) this.holdUntil(over);
    }
    if (!isControl(header) && this.#read !== undefined) {
      this.#mask = header.masked ? header.bytes.subarray(header.bytes.length - 4) : undefined;
      this.#maskAt = 0;
      // A final frame with no payload: its header is what ends the message, so it is what waits.
      if (header.fin && header.length === 0) {
        this.#held = bytes;
        return;
      }
    }
    this.send(bytes);
  }

  protected override framePayload(bytes: Buffer, header: FrameHeader): void {
    if (isControl(header)) {
      this.send(Buffer.from(bytes));
      return;
    }
    this.#size += bytes.length;
    const read = this.#read;
    if (read === undefined) {
      this.send(Buffer.from(bytes));
      return;
    }
    read.push(this.#unmasked(bytes));
    // The final frame: each piece goes once the next has come; the last waits for the verdict.
    if (!header.fin) {
      this.send(Buffer.from(bytes));
      return;
    }
    if (this.#held !== undefined) this.send(this.#held);
    this.#held = Buffer.from(bytes);
  }

  protected override frameEnd(header: FrameHeader): void {
    if (isControl(header) || !header.fin) return;
    const held = this.#held;
    this.#held = undefined;
    if (this.#read?.end() === true) {
      this.#refused = true;
      return;
    }
    if (held !== undefined) this.send(held);
    this.#sized(this.#size);
  }

  /** `bytes` as the server reads them: XOR with the frame's mask key, from where the frame's payload is. */
  #unmasked(bytes: Buffer): Buffer {
    const mask = this.#mask;
    if (mask === undefined) return bytes;
    const out = Buffer.allocUnsafe(bytes.length);
    for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ mask[(this.#maskAt + i) & 3]!;
    this.#maskAt += bytes.length;
    return out;
  }
}
