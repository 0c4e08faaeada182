import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { filterToolsList, type ToolsListFilter } from './tools-list.ts';

// A Server-Sent Events stream from an MCP server (Streamable HTTP answers a POST with one when it
// streams), read event by event as it arrives: an event whose data is a tools/list answer of this
// request is written again with only the tools the agent may call; every other event goes on
// byte for byte, as soon as it is complete. Events split across chunks at any byte, and lines
// ended by CRLF, LF or CR, are handled; an event longer than MAX_EVENT ends the stream with an
// error (keyway cannot judge what it cannot hold, and does not pass it unjudged).

export const MAX_EVENT = 4 * 1024 * 1024;

export class SseToolsFilter extends Transform {
  readonly #filter: ToolsListFilter;
  // A character split across chunks is kept whole.
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  constructor(filter: ToolsListFilter) {
    super();
    this.#filter = filter;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    // Only the new text (and the 3 characters before it, where a blank line may begin) is searched:
    // a long event arriving in many chunks is scanned once, not once per chunk.
    let from = Math.max(0, this.#pending.length - 3);
    this.#pending += this.#decoder.write(chunk);
    for (;;) {
      const end = eventEnd(this.#pending, from);
      from = 0;
      if (end === undefined) break;
      const raw = this.#pending.slice(0, end.after);
      this.#pending = this.#pending.slice(end.after);
      this.push(rewriteEvent(raw, end.body, this.#filter));
    }
    if (this.#pending.length > MAX_EVENT) return done(new Error(`an MCP server-sent event over ${MAX_EVENT} bytes`));
    done();
  }

  override _flush(done: TransformCallback): void {
    this.#pending += this.#decoder.end();
    if (this.#pending !== '') this.push(this.#pending);
    done();
  }
}

/** Where the first complete event ends: its text without the blank line, and the index after it. */
function eventEnd(text: string, from = 0): { body: string; after: number } | undefined {
  const blank = /\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n/g;
  blank.lastIndex = from;
  const match = blank.exec(text);
  if (!match) return undefined;
  // A CR at the very end may be the first half of a CRLF still to come.
  if (match[0] === '\r\r' && match.index + 2 === text.length) return undefined;
  return { body: text.slice(0, match.index), after: match.index + match[0].length };
}

/** The event as it goes to the agent: rewritten when it is a tools/list answer to filter, else as it came. */
function rewriteEvent(raw: string, body: string, filter: ToolsListFilter): string {
  const lines = body.split(/\r\n|\r|\n/);
  const data = lines.filter((l) => l.startsWith('data:')).map((l) => (l.startsWith('data: ') ? l.slice(6) : l.slice(5)));
  if (data.length === 0) return raw;
  let value: unknown;
  try {
    value = JSON.parse(data.join('\n'));
  } catch {
    return raw;
  }
  const next = filterToolsList(value, filter);
  if (next === undefined) return raw;
  // The other fields (event, id, retry) as they were; one data line for the filtered JSON.
  const others = lines.filter((l) => !l.startsWith('data:') && l !== '');
  return `${[...others, `data: ${JSON.stringify(next)}`].join('\n')}\n\n`;
}

/** A whole event stream (a small answer read at once), filtered event by event. */
export function filterSseBody(body: Buffer, filter: ToolsListFilter): Buffer {
  let text = body.toString('utf8');
  let out = '';
  for (;;) {
    const end = eventEnd(text);
    if (end === undefined) break;
    out += rewriteEvent(text.slice(0, end.after), end.body, filter);
    text = text.slice(end.after);
  }
  return Buffer.from(out + text, 'utf8');
}
