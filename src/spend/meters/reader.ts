// The contract between the meter (index.ts, websocket.ts) and one wire format's reader: the meter
// cuts the body into events or JSON values; the reader says what each means to the tally.

export interface FormatReader {
  /** Whether an SSE event of this name can matter (the rest are not parsed: pings, block starts, item echoes). */
  wants(name: string | undefined): boolean;
  /** One parsed SSE event (or WebSocket message): `name` is its `event:` line, when it had one. */
  event(name: string | undefined, data: unknown): void;
  /** One whole JSON answer, or one element of a streamed JSON array. */
  body(value: unknown): void;
  /** The format's output is no text (embeddings): delivered bytes are not counted as output. */
  readonly outputless?: true;
}
