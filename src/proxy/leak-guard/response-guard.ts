import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { type Transform, Writable } from 'node:stream';
import { contentCodings, decodeFailure, decodingStages } from './encoding.ts';
import type { HeldNeedles } from './held.ts';
import { MessageScan } from './message-scan.ts';
import { checkWholeGzip, GzipWatch } from './sniffed-gzip.ts';
import { LeakGuard, nameHoldsNeedle, redactAll, redactText, type RedactionStyle } from './index.ts';

// The leak guard applied to one upstream response, whoever writes it to the agent (forward.ts on
// a ServerResponse, websocket/forwarder.ts on the raw socket of a refused upgrade). Every body is scanned
// when a secret was injected, whatever its type: an echo can come back as octet-stream, with no
// type, or compressed. The scan streams, so it costs a pass over the bytes and no buffering.

export interface Redact {
  /** The needles of the credential on this request (and of signatures keyway made for it). */
  needles: Buffer[];
  /** The real values keyway holds for the agent, looked for on every answer (leak-guard/held.ts). */
  readonly held?: HeldNeedles | undefined;
  /** Hears every redaction count (headers, then body), for the audit line's leak_redacted. */
  onRedacted: (count: number) => void;
}

/** How the body reaches the agent. */
export type BodyGuard =
  /** Read whole, redacted, sent with its true length: small text, the common JSON answer. */
  | { kind: 'whole'; redact: (body: Buffer) => Buffer }
  /**
   * Streamed through the scan (none when no secret was injected), after these decoders when the
   * body is encoded, then through `after` (an MCP tools/list filter: proxy/stages/mcp-tools-list.ts).
   */
  | { kind: 'stream'; decoders: readonly Transform[]; scan: BodyScan | undefined; after?: readonly Transform[] | undefined };

/**
 * Where a response stage needs the body whole before any of it goes out, and time to decide (a
 * login capture saves its tokens first): read up to `limit` bytes (past it, the answer fails with
 * tooLarge()'s error), then rewritten; a rejection fails the answer before its head goes out.
 */
export interface ReadWhole {
  readonly kind: 'read';
  readonly limit: number;
  tooLarge(): Error;
  /** `trailers`: the upstream's, when it sent any (an HTTP/2 answer), judged with the body. */
  rewrite(body: Buffer, trailers: IncomingHttpHeaders | undefined): Promise<Buffer>;
}

/**
 * One body's streaming scan, which reports its redactions (for the audit line) when it ends: the
 * request's credential's needles, then the agent's held ones (leak-guard/message-scan.ts).
 */
export class BodyScan {
  readonly #scan: MessageScan;
  readonly #redact: Redact;

  constructor(redact: Redact, style: RedactionStyle) {
    this.#scan = new MessageScan(redact.needles, redact.held, style);
    this.#redact = redact;
  }

  /** What may go to the agent now, in pieces. */
  scan(chunk: Buffer): Buffer[] {
    return this.#scan.scan(chunk);
  }

  /** The rest, at the end of the body. */
  end(): Buffer {
    const rest = this.#scan.end();
    if (this.#scan.redactions > 0) this.#redact.onRedacted(this.#scan.redactions);
    return rest;
  }

  /** The stage after this scan that searches a gzip file the body may be (leak-guard/sniffed-gzip.ts). */
  gzipWatch(): GzipWatch {
    return new GzipWatch(this.#redact);
  }
}

/** Whether an answer needs the leak guard: a credential went on its request, or keyway holds values for the agent. */
export function guards(redact: Redact | undefined): redact is Redact {
  return redact !== undefined && (redact.needles.length > 0 || redact.held !== undefined);
}

/**
 * A whole body with the request's needles and the agent's held ones redacted. Throws the refusal
 * when it is a gzip file (no Content-Encoding) whose content holds one (leak-guard/sniffed-gzip.ts).
 */
export function redactBody(body: Buffer, redact: Redact, style: RedactionStyle): Buffer {
  checkWholeGzip(body, redact);
  let { output, count } = redact.needles.length > 0 ? redactAll(body, redact.needles, style) : { output: body, count: 0 };
  if (redact.held !== undefined) {
    const held = redact.held.redactWhole(output, style);
    output = held.output;
    count += held.count;
  }
  if (count > 0) redact.onRedacted(count);
  return output;
}

/**
 * A streamed body's decoders, scan and what comes after, as stream stages, for chainInto. After the
 * scan, the body as the client gets it is searched as a gzip file when it begins as one.
 */
export function streamStages(body: { decoders: readonly Transform[]; scan: BodyScan | undefined; after?: readonly Transform[] | undefined }): Transform[] {
  return [...body.decoders, ...(body.scan ? [new LeakGuard(body.scan), body.scan.gzipWatch()] : []), ...(body.after ?? [])];
}

// Sized textual bodies up to this are read whole, redacted, and sent with their true length:
// no chunked encoding and no stream stage for the common small JSON answer.
const SMALL_BODY = 64 * 1024;

/**
 * How the body reaches the agent under the leak guard (stages/response.ts): undefined when there
 * is none (HEAD, 204, 304). Adjusts `head`'s framing to match (a decoded body loses its encoding
 * and length). Throws the ProxyError to answer with when the body cannot be scanned (an unknown
 * Content-Encoding).
 */
export function planBody(statusCode: number, method: string, headers: IncomingHttpHeaders, head: OutgoingHttpHeaders, redact: Redact): BodyGuard | undefined {
  if (!hasBody(statusCode, method, headers)) return undefined;
  const codings = contentCodings(headers['content-encoding']);
  const style: RedactionStyle = isTextual(headers['content-type']) ? 'marker' : 'mask';
  if (codings.length > 0) {
    const decoders = decodingStages(codings);
    // Sent decoded: the length is the decoded one, known only at the end.
    delete head['content-encoding'];
    delete head['content-length'];
    weakenEtag(head);
    return { kind: 'stream', decoders, scan: new BodyScan(redact, style) };
  }
  delete head['content-encoding']; // "identity", in whatever case: says nothing
  const length = Number(headers['content-length']);
  if (style === 'marker' && headers['content-length'] !== undefined && length <= SMALL_BODY) {
    return {
      kind: 'whole',
      redact: (body) => redactBody(body, redact, style),
    };
  }
  // The marker changes the length: a larger or unsized text goes chunked. A mask keeps it.
  if (style === 'marker') delete head['content-length'];
  return { kind: 'stream', decoders: [], scan: new BodyScan(redact, style) };
}

/**
 * Pipes the stages into `sink` and returns where the upstream body goes. That writable finishes
 * only once the last stage has ended, and fails if any stage does: a decoder may fail as late as
 * its flush (a corrupt last block), and the one writing into it (undici) must hear of it, so the
 * agent's response is cut and the audit line says why, instead of hanging half-sent. If the
 * agent leaves, it fails too, which stops the upstream.
 */
export function chainInto(stages: readonly Transform[], sink: Writable): Writable {
  const first = stages[0];
  const last = stages.at(-1);
  if (!first || !last) return sink;
  stages.forEach((stage, i) => {
    stage.pipe(stages[i + 1] ?? sink);
  });
  let finished: ((err?: Error | null) => void) | undefined;
  const entry = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (first.write(chunk)) done();
      else first.once('drain', () => done());
    },
    final(done) {
      finished = done;
      first.end();
    },
    destroy(err, done) {
      for (const stage of stages) stage.destroy();
      done(err);
    },
  });
  last.once('end', () => finished?.());
  for (const stage of stages) stage.once('error', (err) => entry.destroy(decodeFailure(err)));
  sink.once('close', () => {
    if (!last.readableEnded) entry.destroy();
  });
  return entry;
}

/**
 * Textual types get the visible marker; the rest (binary, unknown, no type) a same-length mask.
 * Media types are case-insensitive (RFC 9110 8.3.1).
 */
export function isTextual(contentType: string | string[] | undefined): boolean {
  const type = String(contentType ?? '').toLowerCase();
  return /^text\/|[/+](json|xml|javascript|ecmascript|x-www-form-urlencoded|yaml|x-ndjson|graphql)\b/.test(type) || type.startsWith('application/problem');
}

export function hasBody(statusCode: number, method: string, headers: IncomingHttpHeaders): boolean {
  if (method === 'HEAD' || statusCode === 204 || statusCode === 304 || statusCode < 200) return false;
  return headers['content-length'] !== '0';
}

/** The decoded body is another representation: a strong validator no longer holds (nginx's gunzip does the same). */
function weakenEtag(head: OutgoingHttpHeaders): void {
  const etag = head['etag'];
  if (typeof etag === 'string' && !etag.startsWith('W/')) head['etag'] = `W/${etag}`;
}

/**
 * An upstream that quotes the secret in a response header (a debug echo, a WWW-Authenticate) gets
 * it redacted there too. A header whose name holds it is dropped: a renamed header would mean
 * nothing, and the name alone was the leak.
 */
export function redactHeaders(head: OutgoingHttpHeaders, redact: Redact): void {
  let count = 0;
  const { needles, held } = redact;
  const clean = (value: string) => {
    let text = value;
    if (needles.length > 0) {
      const r = redactText(value, needles);
      text = r.text;
      count += r.count;
    }
    if (held !== undefined && !held.cleanValue(text)) {
      const h = held.redactValue(text);
      text = h.text;
      count += h.count;
    }
    return text;
  };
  for (const name in head) {
    if ((needles.length > 0 && nameHoldsNeedle(name, needles)) || held?.nameHolds(name)) {
      delete head[name];
      count++;
      continue;
    }
    const value = head[name];
    if (typeof value === 'string') head[name] = clean(value);
    else if (Array.isArray(value)) head[name] = value.map(clean);
  }
  if (count > 0) redact.onRedacted(count);
}
