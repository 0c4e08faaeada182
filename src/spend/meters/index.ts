import type { UsageReading } from '../usage.ts';
import { anthropicReader } from './anthropic.ts';
import { JsonBody, JsonValues } from './json.ts';
import { usageAtEnd } from './json-tail.ts';
import { geminiReader } from './gemini.ts';
import { openaiChatReader } from './openai-chat.ts';
import { openaiResponsesReader } from './openai-responses.ts';
import type { FormatReader } from './reader.ts';
import type { MeterPlan } from './routes.ts';
import { SseReader } from './sse.ts';
import { Tally } from './tally.ts';

// Answer meters (issue 63): the proxy feeds one the answer's decoded body as it passes to the
// client, then asks what the model used. A stream (text/event-stream) is read event by event and
// never held; a JSON answer is collected within a bound (8 MiB) and read at the end; Gemini's JSON
// array stream is read element by element. Nothing here does I/O or throws on what an upstream
// sends: a body it cannot read gives an unknown usage, which the caller flags.

export { modelRoute, socketRoute, type MeterPlan, type MeterRoute, type ModelApiHint, type ModelRoute } from './routes.ts';
export { wsMeter, type WsMeter } from './websocket.ts';

export interface AnswerMeter {
  /** The next piece of the decoded body, exactly as delivered to the client. */
  push(chunk: Buffer): void;
  /** The body ended as the upstream meant: `reported` usage, else unknown (or partial when it stopped short of its final usage). */
  end(): UsageReading;
  /** The body stopped early (the client left, the upstream broke off): what was delivered, as `partial`. */
  abandon(): UsageReading;
}

export interface MeterOptions {
  /** The request body's size in bytes: the input is estimated from it (bytes / 4) when an answer stops before saying. */
  requestBytes?: number | undefined;
}

/** A meter for one answer on a metered route; undefined for an answer that is not 2xx (not billed). */
export function answerMeter(plan: MeterPlan, status: number, contentType: string | undefined, options: MeterOptions = {}): AnswerMeter | undefined {
  if (status < 200 || status > 299) return undefined;
  const tally = new Tally(plan.requestModel, options.requestBytes);
  const reader = readerFor(plan, tally);
  if (mediaType(contentType) === 'text/event-stream') return sseMeter(reader, tally);
  if (plan.api === 'gemini') return jsonArrayMeter(reader, tally);
  // Any other type is read as JSON: a body that does not parse gives an unknown usage.
  return jsonMeter(reader, tally);
}

export function readerFor(plan: MeterPlan, tally: Tally): FormatReader {
  switch (plan.route) {
    case 'anthropic-messages':
      return anthropicReader(tally);
    case 'openai-chat':
    case 'openai-completions':
      return openaiChatReader(tally, false);
    case 'openai-embeddings':
      return openaiChatReader(tally, true);
    case 'openai-responses':
      return openaiResponsesReader(tally);
    case 'gemini-generate':
      return geminiReader(tally, false);
    case 'gemini-code-assist':
      return geminiReader(tally, true);
  }
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** Ends once: a second end() or abandon() gives the first reading, and pieces after it are ignored. */
function once(meter: { push(chunk: Buffer): void; end(): UsageReading; abandon(): UsageReading }): AnswerMeter {
  let done: UsageReading | undefined;
  return {
    push: (chunk) => {
      if (done === undefined) meter.push(chunk);
    },
    end: () => (done ??= meter.end()),
    abandon: () => (done ??= meter.abandon()),
  };
}

function sseMeter(reader: FormatReader, tally: Tally): AnswerMeter {
  const sse = new SseReader({
    event(name, data) {
      if (data === '[DONE]' || !reader.wants(name) || reader.quick?.(name, data) === true) return;
      let value: unknown;
      try {
        value = JSON.parse(data);
      } catch {
        // Not JSON: whatever it carried reached the client and is counted as delivered text.
        tally.unreadable = true;
        tally.chars += data.length;
        return;
      }
      reader.event(name, value);
    },
    skipped(bytes) {
      tally.unreadable = true;
      tally.chars += bytes;
    },
  });
  return once({
    push: (chunk) => sse.push(chunk),
    end: () => {
      sse.end();
      return tally.ended();
    },
    // The event in progress is not read: it may be cut anywhere.
    abandon: () => tally.abandoned(),
  });
}

function jsonMeter(reader: FormatReader, tally: Tally): AnswerMeter {
  const body = new JsonBody();
  const read = (): void => {
    const value = body.parse() ?? (body.overflowed ? usageAtEnd(body.tail().toString('utf8')) : undefined);
    if (value === undefined) tally.unreadable = true;
    else reader.body(value);
  };
  return once({
    push: (chunk) => body.push(chunk),
    end: () => {
      read();
      return tally.ended();
    },
    abandon: () => {
      // A whole answer cut short rarely parses; when it does (the client left after the last byte), its usage counts.
      read();
      // The model had produced all of it before the first byte was sent: what reached the client is
      // counted as output text (its JSON around the text included: the estimate errs high).
      if (!tally.final && reader.outputless !== true) tally.chars += body.bytes;
      return tally.abandoned();
    },
  });
}

function jsonArrayMeter(reader: FormatReader, tally: Tally): AnswerMeter {
  const values = new JsonValues({
    value(value) {
      if (value === undefined) tally.unreadable = true;
      else reader.body(value);
    },
    skipped(bytes) {
      tally.unreadable = true;
      tally.chars += bytes;
    },
  });
  return once({
    push: (chunk) => values.push(chunk),
    end: () => tally.ended(),
    abandon: () => {
      tally.chars += values.openBytes;
      return tally.abandoned();
    },
  });
}
