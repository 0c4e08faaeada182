import type { UsageReading } from '../../../spend/core/usage.ts';
import { type FrameHeader, FrameReader, isControl } from '../../websocket-frames/frame-reader.ts';

// Model traffic over a WebSocket (codex speaks OpenAI Responses this way): the upstream's text
// messages, as the agent gets them (after the leak guard), are shown to the connection's meter,
// which reports each response's usage as it completes. Frames pass on as they came; a message's
// payload is copied only while it is read, up to MAX_MESSAGE (a `response.completed` event carries
// the whole response). Past that the message is not read, and the response it completes is counted
// from what was seen of it (the meter's partial reading when the connection ends).
//
// A text message being read has its frame's last payload piece held until the frame ends, so that a
// response's completing message reaches the agent only once its count is durable (issue 85): at
// once with the process's own ledger (journaled as it is counted), or once the primary answers under
// proxy.workers; a count that cannot be made durable stops the socket instead.

const OPCODE_TEXT = 0x1;
const OPCODE_CONTINUATION = 0x0;
const MAX_MESSAGE = 8 * 1024 * 1024;

/** What the tap reports to: one reading per completed response. */
export interface MessageMeter {
  onServerMessage(text: string): readonly UsageReading[];
}

export class ModelMessageTap extends FrameReader {
  readonly #meter: MessageMeter;
  /** Counts a reading; a promise: what the message's last bytes wait for (a rejection stops the socket). */
  readonly #onReading: (reading: UsageReading) => Promise<void> | undefined;
  /** The text message being read; undefined in a binary message, or one past MAX_MESSAGE. */
  #parts: Buffer[] | undefined;
  #size = 0;
  #inText = false;
  /** The current frame's last payload piece (a copy), sent at its end: after the count of the message it completes. */
  #last: Buffer | undefined;

  constructor(meter: MessageMeter, onReading: (reading: UsageReading) => Promise<void> | undefined) {
    super();
    this.#meter = meter;
    this.#onReading = onReading;
  }

  protected override frameStart(header: FrameHeader, bytes: Buffer): void {
    this.send(bytes);
    if (isControl(header)) return;
    if (header.opcode !== OPCODE_CONTINUATION) {
      this.#inText = header.opcode === OPCODE_TEXT;
      this.#parts = this.#inText ? [] : undefined;
      this.#size = 0;
    }
  }

  protected override framePayload(bytes: Buffer, header: FrameHeader): void {
    if (isControl(header) || this.#parts === undefined) return this.send(bytes);
    this.#size += bytes.length;
    if (this.#size > MAX_MESSAGE) {
      this.#parts = undefined;
      this.#sendLast();
      return this.send(bytes);
    }
    const copy = Buffer.from(bytes);
    this.#parts.push(copy);
    this.#sendLast();
    this.#last = copy;
  }

  protected override frameEnd(header: FrameHeader): void {
    if (isControl(header)) return;
    if (!header.fin) return this.#sendLast();
    const parts = this.#parts;
    this.#parts = undefined;
    if (!this.#inText || parts === undefined) return this.#sendLast();
    const durable: Array<Promise<void>> = [];
    for (const reading of this.#meter.onServerMessage(Buffer.concat(parts, this.#size).toString('utf8'))) {
      const counted = this.#onReading(reading);
      if (counted !== undefined) durable.push(counted);
    }
    // The message's last bytes wait for its counts; a count that cannot be made durable stops the socket.
    if (durable.length > 0)
      this.holdUntil(
        Promise.all(durable).then(
          () => false,
          () => true,
        ),
      );
    this.#sendLast();
  }

  #sendLast(): void {
    const last = this.#last;
    this.#last = undefined;
    if (last !== undefined) this.send(last);
  }
}
