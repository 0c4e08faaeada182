import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';

// A request from the agent reaches the pipeline (exchange.ts) over HTTP/1.x, as node:http's
// IncomingMessage, or as one HTTP/2 stream, as node:http2's compatibility request. The two agree
// on what the stages read (method, headers, url, complete, a Readable body) and on how an answer
// is written (writeHead, write, end, headersSent, statusCode, 'close'); where they differ
// (pseudo-headers, a body without Content-Length, keep-alive) the stages ask isHttp2Request.

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

export function isHttp2Request(req: ClientRequest): req is Http2ServerRequest {
  return req.httpVersionMajor === 2 && 'stream' in req;
}

export function isHttp2Response(res: ClientResponse): res is Http2ServerResponse {
  return 'stream' in res;
}

/** writeHead on either kind of response (each is overloaded: TypeScript cannot call their union). */
export function writeHead(res: ClientResponse, statusCode: number, head: OutgoingHttpHeaders): void {
  if (isHttp2Response(res)) res.writeHead(statusCode, head);
  else res.writeHead(statusCode, head);
}

/**
 * Cuts a response whose head was sent. HTTP/1.1: the connection is destroyed, so the client sees a
 * body cut short. HTTP/2: the stream is reset with INTERNAL_ERROR; a plain destroy() would reset it
 * with NO_ERROR, which a client may take for a complete body.
 */
export function cutResponse(res: ClientResponse): void {
  if (isHttp2Response(res)) {
    if (!res.stream.destroyed) res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  } else res.destroy();
}

/**
 * Cuts the exchange `req` belongs to, reached from its request (the sweep holds no response): as
 * cutResponse does, the HTTP/1.1 connection destroyed, or the HTTP/2 stream reset with INTERNAL_ERROR.
 */
export function cutRequest(req: ClientRequest): void {
  if (isHttp2Request(req)) {
    if (!req.stream.destroyed) req.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  } else req.socket.destroy();
}

/**
 * Whether the whole response went out. HTTP/2: a stream reset (by the client, or by keyway for a
 * stall) also counts as "finished" for node's compat response, so its reset code decides.
 */
export function responseCompleted(res: ClientResponse): boolean {
  if (!isHttp2Response(res)) return res.writableFinished;
  const code = res.stream.rstCode;
  return res.writableEnded && (code === undefined || code === constants.NGHTTP2_NO_ERROR);
}
