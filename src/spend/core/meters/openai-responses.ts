import { rawStringLength } from './raw-string.ts';
import type { WantedMembers } from './json-members.ts';
import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// OpenAI's Responses API, streamed (SSE, or Codex's WebSocket: the same events) or whole. A stream
// ends with response.completed, response.incomplete or response.failed, each carrying the response
// with its `usage` (input_tokens, input_tokens_details.cached_tokens, output_tokens). A whole answer
// is the response object (or compact's response.compaction) with `usage` at the top.

/** The events that end a response and carry its usage. */
export const RESPONSE_ENDS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** What body() reads of a whole answer. */
const MEMBERS: readonly string[] = ['model', 'usage'];
/** What event() reads of an event too large to hold: the last, `response.completed`, repeats the response with its images. */
export const LARGE_EVENT_MEMBERS: WantedMembers = ['type', ['response', 'model'], ['response', 'usage']];

// A class with fields, not closures: one is made per metered answer (docs/perf/spend.md).
export class OpenAIResponsesReader implements FormatReader {
  readonly members = MEMBERS;
  readonly large = LARGE_EVENT_MEMBERS;
  readonly #tally: Tally;

  constructor(tally: Tally) {
    this.#tally = tally;
  }

  // Output deltas, the response's start (its model) and its end; item and part echoes repeat what deltas gave.
  wants(name: string | undefined): boolean {
    return name === undefined || name.endsWith('.delta') || name === 'response.created' || RESPONSE_ENDS.has(name);
  }

  quick(name: string | undefined, data: string): boolean {
    if (name === undefined || !name.endsWith('.delta') || name.includes('audio')) return false;
    const size = rawStringLength(data, 'delta');
    if (size === undefined) return false;
    this.#tally.deltaOf(size);
    return true;
  }

  event(_name: string | undefined, data: unknown): void {
    if (!isRecord(data)) return;
    const type = data['type'];
    if (typeof type !== 'string') return;
    if (type.endsWith('.delta')) {
      // Text, refusals, reasoning, tool arguments; audio deltas are base64, not text.
      if (typeof data['delta'] === 'string' && !type.includes('audio')) this.#tally.delta(data['delta']);
    } else if (type === 'response.created' || RESPONSE_ENDS.has(type)) {
      const response = data['response'];
      if (!isRecord(response)) return;
      this.#tally.setModel(response['model']);
      if (RESPONSE_ENDS.has(type)) this.#usage(response['usage']);
    }
  }

  body(value: unknown): void {
    if (!isRecord(value)) return;
    this.#tally.setModel(value['model']);
    this.#usage(value['usage']);
  }

  #usage(value: unknown): void {
    if (!isRecord(value)) return;
    const details = value['input_tokens_details'];
    this.#tally.report(count(value['input_tokens']), count(value['output_tokens']), isRecord(details) ? count(details['cached_tokens']) : undefined);
    this.#tally.final = true;
  }
}

export const openaiResponsesReader = (tally: Tally): OpenAIResponsesReader => new OpenAIResponsesReader(tally);
