import type { UsageReading } from '../usage.ts';
import { LARGE_EVENT_MEMBERS, openaiResponsesReader, RESPONSE_ENDS } from './openai-responses.ts';
import type { MeterPlan } from './routes.ts';
import { membersOfText } from './json-members.ts';
import { MAX_EVENT_BYTES } from './sse.ts';
import { DEFAULT_OUTPUT_FLOOR, outputFloor, type RequestFacts } from '../request-facts.ts';
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
  /** The same, given the message's size in bytes (what the proxy sees of a message it passes on), and what it says when it was read. */
  onClientBytes(size: number, facts?: RequestFacts): void;
  /** A message the server sent: the readings of the responses it ended (none, mostly; one at most, but for a response it cut off). */
  onServerMessage(text: string): UsageReading[];
  /**
   * The socket closed: the response in progress, if any, counted for what was delivered and at
   * least its floor, and each one the client asked for that never began, at its floor.
   */
  close(): UsageReading[];
}

/**
 * What the responses an agent's sockets completed held, by response id: the input and output
 * tokens a response that continues one (`previous_response_id`) starts from. Bounded by its owner
 * (proxy/stages/model-socket.ts: an LRU per process).
 */
export interface ResponseContexts {
  get(id: string): number | undefined;
  set(id: string, tokens: number): void;
}

export function wsMeter(plan: MeterPlan, contexts?: ResponseContexts): WsMeter {
  let current: { tally: Tally; reader: ReturnType<typeof openaiResponsesReader> } | undefined;
  let requestBytes: number | undefined;
  /**
   * The sizes of the messages the client sent since the last response began: each may be a
   * response.create the server has (and bills), whose response has not begun. The messages are not
   * read, so a response left before its usage counts its vendor's default output (its cap unknown:
   * docs/spend.md, "What a request costs at least").
   */
  const asked: Array<{ bytes: number; facts: RequestFacts | undefined }> = [];
  /** The response in progress's id (response.created), to keep what it held for one that continues it. */
  let currentId: string | undefined;

  /** A tally for the response that answers `ask`: its input from the message (and the conversation it continues, as keyway saw it), its output floor from its cap. */
  const tallyFor = (ask: { bytes: number; facts: RequestFacts | undefined } | undefined): Tally => {
    const facts = ask?.facts;
    const context = facts?.continues ? (contexts?.get(facts.continues) ?? 0) : 0;
    const bytes = ask === undefined ? requestBytes : ask.bytes + context * 4;
    const floor = facts === undefined ? DEFAULT_OUTPUT_FLOOR[plan.api] : outputFloor(plan, facts);
    return new Tally(plan.requestModel ?? facts?.model ?? null, bytes, floor);
  };

  const start = (): NonNullable<typeof current> => {
    // The response that begins answers the oldest message not yet answered.
    const tally = tallyFor(asked.shift());
    return { tally, reader: openaiResponsesReader(tally) };
  };

  return {
    onClientMessage(text) {
      this.onClientBytes(Buffer.byteLength(text));
    },
    onClientBytes(size, facts) {
      requestBytes = size;
      // Bounded: a client that sends without answers closes its socket at the budget's check, and
      // a size and a few facts are all that is kept (a thousand is far past any session's backlog).
      if (asked.length < 1024) asked.push({ bytes: size, facts });
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
      if (type === 'response.created') currentId = responseIdOf(event);
      current ??= start();
      // Its size: what a response that ends saying nothing of its usage is counted from (under a
      // budget), and, when its content is not read (large), delivered text if the response stops short.
      current.tally.bytes += text.length;
      if (large) current.tally.chars += text.length;
      if (current.reader.wants(type)) current.reader.event(type, event);
      if (RESPONSE_ENDS.has(type)) {
        const reading = current.tally.ended();
        readings.push(reading);
        // What the next response continuing this one starts from: all it read and all it wrote.
        const id = currentId ?? responseIdOf(event);
        if (id !== undefined && reading.usage !== undefined) contexts?.set(id, reading.usage.input_tokens + reading.usage.output_tokens);
        current = undefined;
        currentId = undefined;
      }
      return readings;
    },
    close() {
      const readings: UsageReading[] = [];
      if (current !== undefined) readings.push(current.tally.abandoned());
      current = undefined;
      // Asked for and never begun: the server may have taken it (and bills its input, and what it wrote).
      for (const ask of asked.splice(0)) readings.push(tallyFor(ask).abandoned());
      return readings;
    },
  };
}

/** A Responses event's `response.id` (a short string), or undefined. */
function responseIdOf(event: unknown): string | undefined {
  const response = (event as { response?: { id?: unknown } } | undefined)?.response;
  const id = response?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 256 ? id : undefined;
}
