// The contract between the meter (index.ts, websocket.ts) and one wire format's reader: the meter
// cuts the body into events or JSON values; the reader says what each means to the tally.
import type { WantedMembers } from './json-members.ts';

export interface FormatReader {
  /** Whether an SSE event of this name can matter (the rest are not parsed: pings, block starts, item echoes). */
  wants(name: string | undefined): boolean;
  /**
   * An event read without parsing, when its name says it is a content delta: true when taken (its
   * text counted), false to have it parsed and given to event().
   */
  quick?(name: string | undefined, data: string): boolean;
  /** One parsed SSE event (or WebSocket message): `name` is its `event:` line, when it had one. */
  event(name: string | undefined, data: unknown): void;
  /** One whole JSON answer, or one element of a streamed JSON array. */
  body(value: unknown): void;
  /**
   * The top-level members of a whole JSON answer that body() reads: the meter then keeps only those
   * members' bytes as the answer passes (json-members.ts), never the answer. Absent: body() is given
   * the whole parsed answer (held within the bound).
   */
  readonly members?: WantedMembers;
  /**
   * What an SSE event or a JSON array element too large to hold (past MAX_EVENT_BYTES) is read for,
   * as it passes (json-members.ts): the members that carry usage and model, nested as the format
   * nests them. event() or body() is then given those members alone, as an object shaped like the
   * event's (so the reader reads them as it reads a small one).
   */
  readonly large: WantedMembers;
  /** The format's output is no text (embeddings): delivered bytes are not counted as output. */
  readonly outputless?: true;
}
