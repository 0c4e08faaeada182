import { rawStringLength } from './raw-string.ts';
import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// Anthropic's Messages API. A stream gives the input side of usage in message_start
// (message.usage: input_tokens, cache_read_input_tokens, cache_creation_input_tokens, and an early
// output_tokens) and the cumulative output in message_delta.usage, which may restate the input
// fields: the latest value of each is kept. A whole answer carries `usage` and `model`.
// Anthropic counts cache reads and writes apart from input_tokens; usage.ts's input includes them.

/** Events that carry nothing a meter reads. */
const IGNORED = new Set(['ping', 'content_block_start', 'content_block_stop', 'message_stop']);

export function anthropicReader(tally: Tally): FormatReader {
  let input: number | undefined;
  let cacheRead: number | undefined;
  let cacheWrite: number | undefined;

  const usage = (value: unknown): void => {
    if (!isRecord(value)) return;
    input = count(value['input_tokens']) ?? input;
    cacheRead = count(value['cache_read_input_tokens']) ?? cacheRead;
    cacheWrite = count(value['cache_creation_input_tokens']) ?? cacheWrite;
    tally.report({
      input: input === undefined ? undefined : input + (cacheRead ?? 0) + (cacheWrite ?? 0),
      output: count(value['output_tokens']),
      cached: cacheRead,
      cacheWrite,
    });
  };

  return {
    wants: (name) => name === undefined || !IGNORED.has(name),
    quick(name, data) {
      if (name !== 'content_block_delta') return false;
      const size = rawStringLength(data, 'text') ?? rawStringLength(data, 'partial_json') ?? rawStringLength(data, 'thinking');
      if (size === undefined) return false;
      tally.deltaOf(size);
      return true;
    },
    event(_name, data) {
      if (!isRecord(data)) return;
      const type = data['type'];
      if (type === 'content_block_delta') {
        const delta = data['delta'];
        if (!isRecord(delta)) return;
        const text = delta['text'] ?? delta['partial_json'] ?? delta['thinking'];
        if (typeof text === 'string') tally.delta(text);
      } else if (type === 'message_start') {
        const message = data['message'];
        if (!isRecord(message)) return;
        tally.setModel(message['model']);
        usage(message['usage']);
      } else if (type === 'message_delta' && isRecord(data['usage'])) {
        usage(data['usage']);
        tally.final = true;
      }
    },
    body(value) {
      if (!isRecord(value) || !isRecord(value['usage'])) return;
      tally.setModel(value['model']);
      usage(value['usage']);
      tally.final = true;
    },
  };
}
