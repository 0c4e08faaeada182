import type { UsageReading } from '../usage.ts';
import { LARGE_EVENT_MEMBERS, openaiResponsesReader, RESPONSE_ENDS } from './openai-responses.ts';
import type { MeterPlan } from './routes.ts';
import { membersOfText } from './json-members.ts';
import { MAX_EVENT_BYTES } from './sse.ts';
import { DEFAULT_OUTPUT_FLOOR } from '../request-facts.ts';
import { Tally } from './tally.ts';

// The Responses API over a WebSocket, as Codex speaks it (`…/responses`): the client sends
// `response.create` messages, the server answers each with the stream's events as JSON text
// messages (the same events as the SSE stream), one response after another on one socket. Each
// response is metered on its own: a reading when it ends (response.completed, .incomplete,
// .failed), a partial one when the socket closes, or an error ends it, midway. A message past
// MAX_EVENT_BYTES (already held whole by the socket) is not parsed but scanned for the members the
// Responses reader names for a large event (its type, response.model, response.usage).

export interface WsMeter {
  /** A message the client sent: its size is the input estimate should the response stop before saying. */
  onClientMessage(text: string): void;
  /** The same, given the message's size in bytes (what the proxy sees of a message it passes on). */
  onClientBytes(size: number): void;
  /** A message the server sent: the readings of the responses it ended (none, mostly; one at most, but for a response it cut off). */
  onServerMessage(text: string): UsageReading[];
  /**
   * The socket closed: the response in progress, if any, counted for what was delivered and at
   * least its floor, and each one the client asked for that never began, at its floor.
   */
  close(): UsageReading[];
}

export function wsMeter(plan: MeterPlan): WsMeter {
  let current: { tally: Tally; reader: ReturnType<typeof openaiResponsesReader> } | undefined;
  let requestBytes: number | undefined;
  /**
   * The sizes of the messages the client sent since the last response began: each may be a
   * response.create the server has (and bills), whose response has not begun. The messages are not
   * read, so a response left before its usage counts its vendor's default output (its cap unknown:
   * docs/spend.md, "What a request costs at least").
   */
  const asked: number[] = [];
  const floor = DEFAULT_OUTPUT_FLOOR[plan.api];

  const start = (): NonNullable<typeof current> => {
    // The response that begins answers the oldest message not yet answered.
    const bytes = asked.shift() ?? requestBytes;
    const tally = new Tally(plan.requestModel, bytes, floor);
    return { tally, reader: openaiResponsesReader(tally) };
  };

  return {
    onClientMessage(text) {
      this.onClientBytes(Buffer.byteLength(text));
    },
    onClientBytes(size) {
      requestBytes = size;
      // Bounded: a client that sends without answers closes its socket at the budget's check, and
      // a count of sizes is all that is kept (a thousand is far past any session's backlog).
      if (asked.length < 1024) asked.push(size);
    },
    onServerMessage(text) {
      const readings: UsageReading[] = [];
      const large = text.length > MAX_EVENT_BYTES;
      let event: unknown;
      if (large) {
        // Too large to parse (a response.completed repeating images): read for its type and usage only.
        event = membersOfText(LARGE_EVENT_MEMBERS, text);
        if (event === undefined) {
          current?.tally.lost(text.length);
          return readings;
        }
      } else
        try {
          event = JSON.parse(text);
        } catch {
          current?.tally.lost(0);
          return readings;
        }
      const type = typeof event === 'object' && event !== null ? (event as { type?: unknown }).type : undefined;
      if (typeof type !== 'string') return readings;
      if (type === 'error') {
        // An error before any output is a refused request (not billed); after some, what was delivered counts.
        if (current !== undefined && (current.tally.deltas > 0 || current.tally.output !== undefined)) readings.push(current.tally.abandoned(false));
        // An error with no response begun answers the oldest message asked (a refused request: not billed).
        else if (current === undefined) asked.shift();
        current = undefined;
        return readings;
      }
      if (!type.startsWith('response.')) return readings;
      if (type === 'response.created' && current !== undefined) {
        // A new response while one had not ended: the server stopped the old one where it was.
        readings.push(current.tally.abandoned(false));
        current = undefined;
      }
      current ??= start();
      // Its size: what a response that ends saying nothing of its usage is counted from (under a
      // budget), and, when its content is not read (large), delivered text if the response stops short.
      current.tally.bytes += text.length;
      if (large) current.tally.chars += text.length;
      if (current.reader.wants(type)) current.reader.event(type, event);
      if (RESPONSE_ENDS.has(type)) {
        readings.push(current.tally.ended());
        current = undefined;
      }
      return readings;
    },
    close() {
      const readings: UsageReading[] = [];
      if (current !== undefined) readings.push(current.tally.abandoned());
      current = undefined;
      // Asked for and never begun: the server may have taken it (and bills its input, and what it wrote).
      for (const bytes of asked.splice(0)) readings.push(new Tally(plan.requestModel, bytes, floor).abandoned());
      return readings;
    },
  };
}
