import { constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

/** How often a session whose client holds up a stream checks that the client is still there. */
export const CLIENT_PROBE_MS = 5_000;

const NOTHING = Buffer.alloc(0);

/** One request on the session, and its response. */
export type Exchange = readonly [Http2ServerRequest, Http2ServerResponse];

/**
 * Lets go of an HTTP/2 client that died while a stream waited on it, within CLIENT_PROBE_MS
 * rather than at body_stall (60 s by default), which bounds a live client that stops reading.
 *
 * Over HTTP/1.1 the write that waits on such a client fails when its kernel resets the connection,
 * and the socket closes. Over HTTP/2 nothing noticed (seen on Node 24 with curl --http2 killed
 * mid-download): node:http2 had stopped reading the socket, and the TLS layer's write stayed
 * pending after the TCP write under it had failed, so the session waited on it for good. So while
 * any stream is held up by its client, the connection under the TLS gets an empty write every
 * CLIENT_PROBE_MS: on a reset connection it fails at once, and the transport's 'error' listener
 * closes it, with the session on it. Its cost on a live connection is a syscall.
 *
 * A client that sent its FIN (`tlsSocket` ended) can send no more body and open no flow-control
 * window, so a stream still held up by it then is cancelled.
 */
export function probeWhileHeldUp(tlsSocket: TLSSocket, transport: Duplex, exchanges: ReadonlySet<Exchange>): () => void {
  const timer = setInterval(() => {
    const heldUp = [...exchanges].filter(([req, res]) => heldUpByClient(req, res));
    if (heldUp.length === 0 || !transport.writable) return;
    if (tlsSocket.readableEnded) {
      for (const [req] of heldUp) req.stream.close(constants.NGHTTP2_CANCEL);
      return;
    }
    transport.write(NOTHING, () => undefined);
  }, CLIENT_PROBE_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** The stream waits on its client: for more of the request body, or to read the response. */
export function heldUpByClient(req: Http2ServerRequest, res: Http2ServerResponse): boolean {
  if (req.stream.destroyed) return false;
  // END_STREAM received (req.complete would wait for the body to be read, and a GET's never is).
  const bodyDone = req.stream.endAfterHeaders || req.stream.state.remoteClose === 1;
  return !bodyDone || (res.headersSent && res.writableNeedDrain);
}
