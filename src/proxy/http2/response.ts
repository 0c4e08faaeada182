import type { IncomingHttpHeaders } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { Writable } from 'node:stream';
import { clientResponseHeaders } from '../headers.ts';
import { guards, redactHeaders, type Redact } from '../leak-guard/response-guard.ts';

// An HTTP/2 response ends with the upstream's trailers when it sent any (gRPC puts its status
// there). undici hands them over only once it has ended the writable it wrote the body into, so
// that writable must not be the response itself.

/**
 * Where undici writes an HTTP/2 answer's body: into `res`, honouring its backpressure, but its
 * end leaves `res` open for endWithTrailers. If the agent resets the stream, this fails, which
 * stops the upstream.
 */
export function leaveOpen(res: Http2ServerResponse): Writable {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (res.write(chunk)) done();
      else res.once('drain', () => done());
    },
    final(done) {
      done();
    },
  });
  // Destroyed without an error, as chainInto does: undici sees a premature close and aborts.
  res.once('close', () => {
    if (!sink.writableFinished) sink.destroy();
  });
  return sink;
}

/**
 * Ends the response with the upstream's trailers: hop-by-hop fields dropped, and the injected
 * secret redacted from the values as it is from the head (an upstream may echo it anywhere).
 */
export function endWithTrailers(res: Http2ServerResponse, trailers: IncomingHttpHeaders | null | undefined, redact: Redact | undefined): void {
  if (res.writableEnded || res.destroyed) return;
  if (trailers && Object.keys(trailers).length > 0) {
    const clean = clientResponseHeaders(trailers);
    if (guards(redact)) redactHeaders(clean, redact);
    res.addTrailers(clean);
  }
  res.end();
}
