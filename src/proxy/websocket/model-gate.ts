import { type FrameHeader, FrameReader, isControl } from './frame-reader.ts';

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

const OPCODE_CONTINUATION = 0x0;

/** True when a budget on the socket is used up (the caller has closed it); a promise under workers. */
export type MessageCheck = () => boolean | Promise<boolean>;

export class ModelMessageGate extends FrameReader {
  readonly #over: MessageCheck;
  readonly #sized: (bytes: number) => void;
  #refused = false;
  /** Payload bytes of the data message being passed on. */
  #size = 0;

  /** `over`: the budget check, asked as each data message starts; `sized`: each data message's size once it has passed. */
  constructor(over: MessageCheck, sized: (bytes: number) => void) {
    super();
    this.#over = over;
    this.#sized = sized;
  }

  protected override get stopped(): boolean {
    return this.#refused;
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    if (!isControl(header) && header.opcode !== OPCODE_CONTINUATION) {
      this.#size = 0;
      const over = this.#over();
      if (over === true) {
        this.#refused = true;
        return;
      }
      if (over instanceof Promise) this.holdUntil(over);
    }
    this.send(bytes);
  }

  protected override framePayload(bytes: Buffer, header: FrameHeader): void {
    if (!isControl(header)) this.#size += bytes.length;
    this.send(Buffer.from(bytes));
  }

  protected override frameEnd(header: FrameHeader): void {
    if (!isControl(header) && header.fin) this.#sized(this.#size);
  }
}
