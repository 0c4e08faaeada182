import type { UsageReading } from '../usage.ts';
import { openaiResponsesReader, RESPONSE_ENDS } from './openai-responses.ts';
import type { MeterPlan } from './routes.ts';
import { MAX_EVENT_BYTES } from './sse.ts';
import { Tally } from './tally.ts';

// The Responses API over a WebSocket, as Codex speaks it (`…/responses`): the client sends
// `response.create` messages, the server answers each with the stream's events as JSON text
// messages (the same events as the SSE stream), one response after another on one socket. Each
// response is metered on its own: a reading when it ends (response.completed, .incomplete,
// .failed), a partial one when the socket closes, or an error ends it, midway.

export interface WsMeter {
  /** A message the client sent: its size is the input estimate should the response stop before saying. */
  onClientMessage(text: string): void;
  /** The same, given the message's size in bytes (what the proxy sees of a message it passes on). */
  onClientBytes(size: number): void;
  /** A message the server sent: the readings of the responses it ended (none, mostly; one at most, but for a response it cut off). */
  onServerMessage(text: string): UsageReading[];
  /** The socket closed: the response in progress, if any, counted for what was delivered. */
  close(): UsageReading | undefined;
}

export function wsMeter(plan: MeterPlan): WsMeter {
  let current: { tally: Tally; reader: ReturnType<typeof openaiResponsesReader> } | undefined;
  let requestBytes: number | undefined;

  const start = (): NonNullable<typeof current> => {
    const tally = new Tally(plan.requestModel, requestBytes);
    return { tally, reader: openaiResponsesReader(tally) };
  };

  return {
    onClientMessage(text) {
      requestBytes = Buffer.byteLength(text);
    },
    onClientBytes(size) {
      requestBytes = size;
    },
    onServerMessage(text) {
      const readings: UsageReading[] = [];
      if (text.length > MAX_EVENT_BYTES) {
        // Too large to read: its bytes reached the client, and its usage (if it had one) is lost.
        if (current !== undefined) {
          current.tally.unreadable = true;
          current.tally.chars += text.length;
        }
        return readings;
      }
      let event: unknown;
      try {
        event = JSON.parse(text);
      } catch {
        if (current !== undefined) current.tally.unreadable = true;
        return readings;
      }
      const type = typeof event === 'object' && event !== null ? (event as { type?: unknown }).type : undefined;
      if (typeof type !== 'string') return readings;
      if (type === 'error') {
        // An error before any output is a refused request (not billed); after some, what was delivered counts.
        if (current !== undefined && (current.tally.deltas > 0 || current.tally.output !== undefined)) readings.push(current.tally.abandoned());
        current = undefined;
        return readings;
      }
      if (!type.startsWith('response.')) return readings;
      if (type === 'response.created' && current !== undefined) {
        // A new response while one had not ended: the old one stopped where it was.
        readings.push(current.tally.abandoned());
        current = undefined;
      }
      current ??= start();
      // Its size: a response that ends saying nothing of its usage is counted from it under a budget.
      current.tally.bytes += text.length;
      if (current.reader.wants(type)) current.reader.event(type, event);
      if (RESPONSE_ENDS.has(type)) {
        readings.push(current.tally.ended());
        current = undefined;
      }
      return readings;
    },
    close() {
      const open = current;
      current = undefined;
      return open?.tally.abandoned();
    },
  };
}
