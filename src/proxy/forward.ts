import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Writable, type Readable } from 'node:stream';
import { LeakGuard, REDACTION, redactAll, shouldScan } from './leak-guard.ts';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders } from './headers.ts';

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
  /** Secrets to redact from textual response bodies (the leak guard), and who hears how many were. */
  redact?: { needles: Buffer[]; onRedacted: (count: number) => void } | undefined;
}

/** 'relayed': the response went to the client. 'withheld': it was discarded for a replay. */
export type ForwardOutcome = 'relayed' | 'withheld';

/**
 * Stage "forward": streams the request body up and the response down without buffering either.
 * undici's stream() writes the response straight into `res` (no intermediate Readable), honouring
 * backpressure both ways. Resolves when the response has been fully written; rejects before
 * anything was written to `res` only if the upstream could not be reached or did not answer.
 */
export async function forward(dispatcher: Dispatcher, res: ServerResponse, out: ForwardRequest): Promise<ForwardOutcome> {
  let outcome: ForwardOutcome = 'relayed';
  await dispatcher.stream(
    {
      origin: out.origin,
      method: out.method as Dispatcher.HttpMethod,
      path: out.path,
      headers: out.headers,
      body: out.body,
      signal: out.signal,
    },
    ({ statusCode, headers }) => {
      if (out.withhold?.(statusCode)) {
        outcome = 'withheld';
        return discard();
      }
      return respondWithUpstream(res, statusCode, headers, out);
    },
  );
  return outcome;
}

/**
 * Writes the upstream's head to the client and returns where its body goes: `res` itself, or the
 * leak guard in front of it for textual bodies when a secret was injected.
 */
export function respondWithUpstream(res: ServerResponse, statusCode: number, headers: IncomingHttpHeaders, out: Pick<ForwardRequest, 'onHead' | 'redact'>): Writable {
  out.onHead?.(statusCode);
  const head = clientResponseHeaders(headers);
  const redact = out.redact && out.redact.needles.length > 0 ? out.redact : undefined;
  if (redact) redactHeaders(head, redact.needles, redact.onRedacted);
  if (!redact || !shouldScan(headers)) {
    res.writeHead(statusCode, head);
    // A stream (server-sent events, chunked) may wait before its first chunk: send the head now.
    // A sized body goes out with its head in one write, which is cheaper per request.
    if (head['content-length'] === undefined) res.flushHeaders();
    return res;
  }
  const length = Number(headers['content-length']);
  if (Number.isFinite(length) && length <= SMALL_BODY) return redactWhole(res, statusCode, head, redact);
  // A redaction changes the length: a larger or unsized body goes chunked through the guard.
  delete head['content-length'];
  res.writeHead(statusCode, head);
  res.flushHeaders();
  const guard = new LeakGuard(redact.needles);
  guard.once('end', () => {
    if (guard.redactions > 0) redact.onRedacted(guard.redactions);
  });
  // pipe(), not pipeline(): pipeline makes an AbortController and a DOMException per response,
  // measurable on the hot path. Teardown both ways by hand instead.
  guard.pipe(res);
  guard.once('error', () => res.destroy());
  res.once('close', () => {
    if (!guard.readableEnded) guard.destroy();
  });
  return guard;
}

// Sized textual bodies up to this are read whole, redacted, and sent with their true length:
// no chunked encoding and no stream stage for the common small JSON answer.
const SMALL_BODY = 64 * 1024;

function redactWhole(res: ServerResponse, statusCode: number, head: OutgoingHttpHeaders, redact: NonNullable<ForwardRequest['redact']>): Writable {
  const chunks: Buffer[] = [];
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
    final(done) {
      const { output, count } = redactAll(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), redact.needles);
      if (count > 0) redact.onRedacted(count);
      head['content-length'] = String(output.length);
      res.writeHead(statusCode, head);
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

/** An upstream that quotes the secret in a response header (a debug echo, a WWW-Authenticate) gets it redacted there too. */
function redactHeaders(head: OutgoingHttpHeaders, needles: Buffer[], onRedacted: (count: number) => void): void {
  let count = 0;
  const secrets = needles.map((needle) => needle.toString());
  const clean = (value: string) => {
    let text = value;
    for (const secret of secrets) {
      if (text.includes(secret)) {
        count += text.split(secret).length - 1;
        text = text.split(secret).join(REDACTION.toString());
      }
    }
    return text;
  };
  for (const [name, value] of Object.entries(head)) {
    if (typeof value === 'string') head[name] = clean(value);
    else if (Array.isArray(value)) head[name] = value.map(clean);
  }
  if (count > 0) onRedacted(count);
}
