import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders } from './headers.ts';

export interface ForwardRequest {
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  signal: AbortSignal;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Stage "forward": streams the request body up and the response down without buffering either.
 * undici's stream() writes the response straight into `res` (no intermediate Readable), honouring
 * backpressure both ways. Resolves when the response has been fully written; rejects before
 * anything was written to `res` only if the upstream could not be reached or did not answer.
 */
export async function forward(dispatcher: Dispatcher, req: IncomingMessage, res: ServerResponse, out: ForwardRequest): Promise<void> {
  await dispatcher.stream(
    {
      origin: out.origin,
      method: out.method as Dispatcher.HttpMethod,
      path: out.path,
      headers: out.headers,
      body: hasBody(req) ? req : null,
      signal: out.signal,
    },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, clientResponseHeaders(headers));
      // A stream (server-sent events, chunked) may wait before its first chunk: send the head now.
      // A sized body goes out with its head in one write, which is cheaper per request.
      if (headers['content-length'] === undefined) res.flushHeaders();
      return res;
    },
  );
}
