import type { ServerResponse } from 'node:http';
import { Writable, type Readable } from 'node:stream';
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
      out.onHead?.(statusCode);
      res.writeHead(statusCode, clientResponseHeaders(headers));
      // A stream (server-sent events, chunked) may wait before its first chunk: send the head now.
      // A sized body goes out with its head in one write, which is cheaper per request.
      if (headers['content-length'] === undefined) res.flushHeaders();
      return res;
    },
  );
  return outcome;
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}
