import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// OpenAI's Chat Completions, legacy Completions and Embeddings: one `usage` shape (prompt_tokens,
// completion_tokens, prompt_tokens_details.cached_tokens). A stream reports usage only when the
// request set stream_options.include_usage (include-usage.ts sets it): every chunk then carries
// `usage: null` and a last one, without choices, the counts. OpenAI-compatible servers that send
// usage in every chunk are read the same way: the latest wins.

/** What body() reads of a whole answer. */
const MEMBERS: readonly string[] = ['model', 'usage'];

// A class with fields, not closures: one is made per metered answer (docs/perf/spend.md).
export class OpenAIChatReader implements FormatReader {
  readonly members = MEMBERS;
  /** A chunk too large to hold (audio, a huge delta) is read for the same: its usage and model. */
  readonly large = MEMBERS;
  readonly #tally: Tally;
  readonly #embeddings: boolean;

  constructor(tally: Tally, embeddings: boolean) {
    this.#tally = tally;
    this.#embeddings = embeddings;
  }

  wants(): boolean {
    return true;
  }

  // Every chunk is parsed: without event names, finding a delta's text unparsed took as long as
  // JSON.parse (several member names searched per chunk; measured with bench/meters.ts).
  event(_name: string | undefined, data: unknown): void {
    if (!isRecord(data)) return;
    this.#tally.setModel(data['model']);
    const choices = data['choices'];
    if (Array.isArray(choices)) {
      let text = '';
      for (const choice of choices) if (isRecord(choice)) text += choiceText(choice);
      this.#tally.delta(text);
    }
    this.#usage(data['usage']);
  }

  body(value: unknown): void {
    if (!isRecord(value)) return;
    this.#tally.setModel(value['model']);
    this.#usage(value['usage']);
  }

  #usage(value: unknown): void {
    if (!isRecord(value)) return;
    const details = value['prompt_tokens_details'];
    // Embeddings produce no output tokens (their usage has none).
    this.#tally.report(
      count(value['prompt_tokens']),
      this.#embeddings ? 0 : count(value['completion_tokens']),
      isRecord(details) ? count(details['cached_tokens']) : undefined,
    );
    this.#tally.final = true;
  }
}

/** Embeddings: the output is no text, so delivered bytes are not counted as output. */
class OpenAIEmbeddingsReader extends OpenAIChatReader {
  readonly outputless = true as const;
}

export const openaiChatReader = (tally: Tally, embeddings: boolean): FormatReader =>
  embeddings ? new OpenAIEmbeddingsReader(tally, true) : new OpenAIChatReader(tally, false);

/** The output a streamed choice delivered: content, a refusal, reasoning, tool arguments, or legacy text. */
function choiceText(choice: Record<string, unknown>): string {
  if (typeof choice['text'] === 'string') return choice['text'];
  const delta = choice['delta'];
  if (!isRecord(delta)) return '';
  let text = '';
  for (const field of ['content', 'refusal', 'reasoning_content', 'reasoning']) if (typeof delta[field] === 'string') text += delta[field];
  const calls = delta['tool_calls'];
  if (Array.isArray(calls))
    for (const call of calls) {
      const fn = isRecord(call) ? call['function'] : undefined;
      if (isRecord(fn) && typeof fn['arguments'] === 'string') text += fn['arguments'];
    }
  return text;
}
