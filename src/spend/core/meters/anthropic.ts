import { rawStringLength } from './raw-string.ts';
import type { WantedMembers } from './json-members.ts';
import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// Anthropic's Messages API. A stream gives the input side of usage in message_start
// (message.usage: input_tokens, cache_read_input_tokens, cache_creation_input_tokens, and an early
// output_tokens) and the cumulative output in message_delta.usage, which may restate the input
// fields: the latest value of each is kept. A whole answer carries `usage` and `model`.
// Anthropic counts cache reads and writes apart from input_tokens; usage.ts's input includes them.
// A class with fields, not closures: one is made per metered answer (docs/perf/spend.md).

/** Events that carry nothing a meter reads. */
const IGNORED = new Set(['ping', 'content_block_start', 'content_block_stop', 'message_stop']);

/** What body() reads of a whole answer. */
const MEMBERS: readonly string[] = ['model', 'usage'];
/** What event() reads of an event too large to hold: message_start's and message_delta's usage. */
const LARGE: WantedMembers = ['type', 'usage', ['message', 'model'], ['message', 'usage']];

export class AnthropicReader implements FormatReader {
  readonly members = MEMBERS;
  readonly large = LARGE;
  readonly #tally: Tally;
  #input: number | undefined;
  #cacheRead: number | undefined;
  #cacheWrite: number | undefined;

  constructor(tally: Tally) {
    this.#tally = tally;
  }

  wants(name: string | undefined): boolean {
    return name === undefined || !IGNORED.has(name);
  }

  quick(name: string | undefined, data: string): boolean {
    if (name !== 'content_block_delta') return false;
    const size = rawStringLength(data, 'text') ?? rawStringLength(data, 'partial_json') ?? rawStringLength(data, 'thinking');
    if (size === undefined) return false;
    this.#tally.deltaOf(size);
    return true;
  }

  event(_name: string | undefined, data: unknown): void {
    if (!isRecord(data)) return;
    const type = data['type'];
    if (type === 'content_block_delta') {
      const delta = data['delta'];
      if (!isRecord(delta)) return;
      const text = delta['text'] ?? delta['partial_json'] ?? delta['thinking'];
      if (typeof text === 'string') this.#tally.delta(text);
    } else if (type === 'message_start') {
      const message = data['message'];
      if (!isRecord(message)) return;
      this.#tally.setModel(message['model']);
      this.#usage(message['usage']);
    } else if (type === 'message_delta' && isRecord(data['usage'])) {
      this.#usage(data['usage']);
      this.#tally.final = true;
    }
  }

  body(value: unknown): void {
    if (!isRecord(value) || !isRecord(value['usage'])) return;
    this.#tally.setModel(value['model']);
    this.#usage(value['usage']);
    this.#tally.final = true;
  }

  #usage(value: unknown): void {
    if (!isRecord(value)) return;
    const input = count(value['input_tokens']) ?? this.#input;
    const cacheRead = count(value['cache_read_input_tokens']) ?? this.#cacheRead;
    const cacheWrite = count(value['cache_creation_input_tokens']) ?? this.#cacheWrite;
    this.#input = input;
    this.#cacheRead = cacheRead;
    this.#cacheWrite = cacheWrite;
    this.#tally.report(input === undefined ? undefined : input + (cacheRead ?? 0) + (cacheWrite ?? 0), count(value['output_tokens']), cacheRead, cacheWrite);
  }
}

export const anthropicReader = (tally: Tally): FormatReader => new AnthropicReader(tally);
