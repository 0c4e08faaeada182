import type { UsageReading } from '../../spend/usage.ts';
import { type FrameHeader, FrameReader, isControl } from './frame-reader.ts';

// Model traffic over a WebSocket (codex speaks OpenAI Responses this way): the upstream's text
// messages, as the agent gets them (after the leak guard), are shown to the connection's meter,
// which reports each response's usage as it completes. Frames pass on as they came; a message's
// payload is copied only while it is read, up to MAX_MESSAGE (a `response.completed` event carries
// the whole response). Past that the message is not read, and the response it completes is counted
// from what was seen of it (the meter's partial reading when the connection ends).

const OPCODE_TEXT = 0x1;
const OPCODE_CONTINUATION = 0x0;
const MAX_MESSAGE = 8 * 1024 * 1024;

/** What the tap reports to: one reading per completed response. */
export interface MessageMeter {
  onServerMessage(text: string): readonly UsageReading[];
}

export class ModelMessageTap extends FrameReader {
  readonly #meter: MessageMeter;
  readonly #onReading: (reading: UsageReading) => void;
  /** The text message being read; undefined in a binary message, or one past MAX_MESSAGE. */
  #parts: Buffer[] | undefined;
  #size = 0;
  #inText = false;

  constructor(meter: MessageMeter, onReading: (reading: UsageReading) => void) {
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
    this.send(bytes);
    if (isControl(header) || this.#parts === undefined) return;
    this.#size += bytes.length;
    if (this.#size > MAX_MESSAGE) this.#parts = undefined;
    else this.#parts.push(Buffer.from(bytes));
  }

  protected override frameEnd(header: FrameHeader): void {
    if (isControl(header) || !header.fin) return;
    const parts = this.#parts;
    this.#parts = undefined;
    if (!this.#inText || parts === undefined) return;
    for (const reading of this.#meter.onServerMessage(Buffer.concat(parts, this.#size).toString('utf8'))) this.#onReading(reading);
  }
}
