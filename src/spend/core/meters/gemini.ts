import type { WantedMembers } from './json-members.ts';
import type { FormatReader } from './reader.ts';
import { count, isRecord, type Tally } from './tally.ts';

// Gemini's generateContent and streamGenerateContent (the Gemini API, Vertex), and Code Assist's,
// which wraps each response as `{response: …, traceId}`. Every response may carry usageMetadata,
// cumulative in a stream (the latest wins): promptTokenCount (cachedContentTokenCount is part of
// it) plus toolUsePromptTokenCount is the input; candidatesTokenCount plus thoughtsTokenCount the
// output. The model is `modelVersion`.

/** What body() reads of a response too large to hold (an image inline): its usage and model, in Code Assist's wrapper too. */
const LARGE: WantedMembers = ['modelVersion', 'usageMetadata'];
const LARGE_WRAPPED: WantedMembers = [
  ['response', 'modelVersion'],
  ['response', 'usageMetadata'],
];

// A class with fields, not closures: one is made per metered answer (docs/perf/spend.md). It names
// no `members`: a whole answer goes through JsonValues, element by element (index.ts).
export class GeminiReader implements FormatReader {
  readonly large: WantedMembers;
  readonly #tally: Tally;
  readonly #wrapped: boolean;

  constructor(tally: Tally, wrapped: boolean) {
    this.#tally = tally;
    this.#wrapped = wrapped;
    this.large = wrapped ? LARGE_WRAPPED : LARGE;
  }

  wants(): boolean {
    return true;
  }

  event(_name: string | undefined, data: unknown): void {
    this.body(data);
  }

  body(value: unknown): void {
    const tally = this.#tally;
    const inner = this.#wrapped && isRecord(value) ? value['response'] : value;
    if (!isRecord(inner)) return;
    tally.setModel(inner['modelVersion']);
    const candidates = inner['candidates'];
    if (Array.isArray(candidates)) {
      let text = '';
      for (const candidate of candidates) text += candidateText(candidate);
      tally.delta(text);
    }
    const meta = inner['usageMetadata'];
    if (!isRecord(meta)) return;
    const prompt = count(meta['promptTokenCount']);
    tally.report(
      prompt === undefined ? undefined : prompt + (count(meta['toolUsePromptTokenCount']) ?? 0),
      (count(meta['candidatesTokenCount']) ?? 0) + (count(meta['thoughtsTokenCount']) ?? 0),
      count(meta['cachedContentTokenCount']),
    );
    tally.final = prompt !== undefined;
  }
}

export const geminiReader = (tally: Tally, wrapped: boolean): FormatReader => new GeminiReader(tally, wrapped);

/** A candidate's delivered output: its parts' text (thoughts included) and function calls' arguments. */
function candidateText(candidate: unknown): string {
  const content = isRecord(candidate) ? candidate['content'] : undefined;
  const parts = isRecord(content) ? content['parts'] : undefined;
  if (!Array.isArray(parts)) return '';
  let text = '';
  for (const part of parts) {
    if (!isRecord(part)) continue;
    if (typeof part['text'] === 'string') text += part['text'];
    else if (isRecord(part['functionCall'])) text += JSON.stringify(part['functionCall']['args'] ?? {});
  }
  return text;
}
