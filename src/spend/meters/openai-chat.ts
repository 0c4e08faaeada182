import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// OpenAI's Chat Completions, legacy Completions and Embeddings: one `usage` shape (prompt_tokens,
// completion_tokens, prompt_tokens_details.cached_tokens). A stream reports usage only when the
// request set stream_options.include_usage (include-usage.ts sets it): every chunk then carries
// `usage: null` and a last one, without choices, the counts. OpenAI-compatible servers that send
// usage in every chunk are read the same way: the latest wins.

export function openaiChatReader(tally: Tally, embeddings: boolean): FormatReader {
  const usage = (value: unknown): boolean => {
    if (!isRecord(value)) return false;
    const details = value['prompt_tokens_details'];
    tally.report({
      input: count(value['prompt_tokens']),
      // Embeddings produce no output tokens (their usage has none).
      output: embeddings ? 0 : count(value['completion_tokens']),
      cached: isRecord(details) ? count(details['cached_tokens']) : undefined,
    });
    tally.final = true;
    return true;
  };

  // Every chunk is parsed: without event names, finding a delta's text unparsed took as long as
  // JSON.parse (several member names searched per chunk; measured with bench/meters.ts).
  const reader: FormatReader = {
    wants: () => true,
    event(_name, data) {
      if (!isRecord(data)) return;
      tally.setModel(data['model']);
      const choices = data['choices'];
      if (Array.isArray(choices)) {
        let text = '';
        for (const choice of choices) if (isRecord(choice)) text += choiceText(choice);
        tally.delta(text);
      }
      usage(data['usage']);
    },
    body(value) {
      if (!isRecord(value)) return;
      tally.setModel(value['model']);
      usage(value['usage']);
    },
  };
  return embeddings ? { ...reader, outputless: true } : reader;
}

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
