import { rawStringLength } from './raw-string.ts';
import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// OpenAI's Responses API, streamed (SSE, or Codex's WebSocket: the same events) or whole. A stream
// ends with response.completed, response.incomplete or response.failed, each carrying the response
// with its `usage` (input_tokens, input_tokens_details.cached_tokens, output_tokens). A whole answer
// is the response object (or compact's response.compaction) with `usage` at the top.

/** The events that end a response and carry its usage. */
export const RESPONSE_ENDS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export function openaiResponsesReader(tally: Tally): FormatReader {
  const usage = (value: unknown): void => {
    if (!isRecord(value)) return;
    const details = value['input_tokens_details'];
    tally.report({
      input: count(value['input_tokens']),
      output: count(value['output_tokens']),
      cached: isRecord(details) ? count(details['cached_tokens']) : undefined,
    });
    tally.final = true;
  };

  return {
    // Output deltas, the response's start (its model) and its end; item and part echoes repeat what deltas gave.
    wants: (name) => name === undefined || name.endsWith('.delta') || name === 'response.created' || RESPONSE_ENDS.has(name),
    quick(name, data) {
      if (name === undefined || !name.endsWith('.delta') || name.includes('audio')) return false;
      const size = rawStringLength(data, 'delta');
      if (size === undefined) return false;
      tally.deltaOf(size);
      return true;
    },
    event(_name, data) {
      if (!isRecord(data)) return;
      const type = data['type'];
      if (typeof type !== 'string') return;
      if (type.endsWith('.delta')) {
        // Text, refusals, reasoning, tool arguments; audio deltas are base64, not text.
        if (typeof data['delta'] === 'string' && !type.includes('audio')) tally.delta(data['delta']);
      } else if (type === 'response.created' || RESPONSE_ENDS.has(type)) {
        const response = data['response'];
        if (!isRecord(response)) return;
        tally.setModel(response['model']);
        if (RESPONSE_ENDS.has(type)) usage(response['usage']);
      }
    },
    body(value) {
      if (!isRecord(value)) return;
      tally.setModel(value['model']);
      usage(value['usage']);
    },
  };
}
