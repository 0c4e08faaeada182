import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { type ClientResponse, isHttp2Response, writeHead } from './client-message.ts';
import { clientResponseHeaders } from './headers.ts';
import { endWithTrailers, leaveOpen } from './http2-response.ts';
import { decodableAcceptEncoding } from './leak-guard-encoding.ts';
import { chainInto, guardResponse, type Redact } from './response-guard.ts';

export interface ForwardRequest {
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | Readable | null;
  signal: AbortSignal;
  /** Return true to swallow a response with this status instead of relaying it (for a replay). */
  withhold?: ((statusCode: number) => boolean) | undefined;
  /** Sees the status before the head goes to the client (the audit line is written at its end). */
  onHead?: ((statusCode: number) => void) | undefined;
  /** Secrets to redact from the response (the leak guard), and who hears how many were. */
  redact?: Redact | undefined;
}

/** 'relayed': the response went to the client. 'withheld': it was discarded for a replay. */
export type ForwardOutcome = 'relayed' | 'withheld';

/**
 * Stage "forward": streams the request body up and the response down without buffering either.
 * undici's stream() writes the response straight into `res` (no intermediate Readable), honouring
 * backpressure both ways. Resolves when the response has been fully written; rejects before
 * anything was written to `res` only if the upstream could not be reached or did not answer.
 */
export async function forward(dispatcher: Dispatcher, res: ClientResponse, out: ForwardRequest): Promise<ForwardOutcome> {
  let outcome: ForwardOutcome = 'relayed';
  // An HTTP/2 answer carries the upstream's trailers (gRPC's status is one): its body goes through
  // a sink that leaves the response open, which ends once undici hands the trailers over.
  const http2 = isHttp2Response(res);
  let opened: Writable | undefined;
  const { trailers } = await dispatcher.stream(
    {
      origin: out.origin,
      method: out.method as Dispatcher.HttpMethod,
      path: out.path,
      headers: guardedRequestHeaders(out.headers, out.redact),
      body: out.body,
      signal: out.signal,
    },
    ({ statusCode, headers }) => {
      if (out.withhold?.(statusCode)) {
        outcome = 'withheld';
        return discard();
      }
      return respondWithUpstream(res, statusCode, headers, out, http2 ? () => (opened = leaveOpen(res)) : undefined);
    },
  );
  if (http2 && outcome === 'relayed') {
    // The last leak-guard stage may still be writing into the sink when undici is done.
    if (opened && !opened.writableFinished) await finished(opened);
    endWithTrailers(res, trailers, out.redact);
  }
  return outcome;
}

/**
 * Writes the upstream's head to the client and returns where its body goes: `res` itself, or the
 * leak guard's stages in front of it when a secret was injected (response-guard.ts).
 */
export function respondWithUpstream(
  res: ClientResponse,
  statusCode: number,
  headers: IncomingHttpHeaders,
  out: Pick<ForwardRequest, 'method' | 'onHead' | 'redact'>,
  sinkFor?: () => Writable,
): Writable {
  const redact = out.redact && out.redact.needles.length > 0 ? out.redact : undefined;
  // Before onHead: a body keyway cannot scan is refused (502) instead of relayed.
  const guarded = redact ? guardResponse(statusCode, out.method, headers, redact) : { head: clientResponseHeaders(headers), body: undefined };
  out.onHead?.(statusCode);
  const { head, body } = guarded;
  if (body?.kind === 'whole') return redactWhole(res, statusCode, head, body.redact);
  writeHead(res, statusCode, head);
  // A stream (server-sent events, chunked) may wait before its first chunk: send the head now.
  // A sized body goes out with its head in one write, which is cheaper per request.
  // (An HTTP/2 response sends its HEADERS frame at writeHead.)
  if (head['content-length'] === undefined && !isHttp2Response(res)) res.flushHeaders();
  // pipe(), not pipeline(): pipeline makes an AbortController and a DOMException per response,
  // measurable on the hot path. chainInto tears down by hand instead.
  const sink = sinkFor?.() ?? (res as Writable);
  return body ? chainInto(body.stages, sink) : sink;
}

function redactWhole(res: ClientResponse, statusCode: number, head: OutgoingHttpHeaders, redact: (body: Buffer) => Buffer): Writable {
  const chunks: Buffer[] = [];
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
    final(done) {
      const output = redact(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      head['content-length'] = String(output.length);
      writeHead(res, statusCode, head);
      res.end(output, () => done());
    },
    destroy(err, done) {
      if (err && !res.headersSent) res.destroy(err);
      done(err);
    },
  });
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

/**
 * Under the leak guard, the agent's Accept-Encoding is narrowed to the codings keyway can decode
 * to scan (leak-guard-encoding.ts). A copy: the caller's headers serve a replay too.
 */
export function guardedRequestHeaders(headers: Record<string, string | string[]>, redact: Redact | undefined): Record<string, string | string[]> {
  if (!redact || redact.needles.length === 0 || headers['accept-encoding'] === undefined) return headers;
  return { ...headers, 'accept-encoding': decodableAcceptEncoding(headers['accept-encoding'])! };
}
