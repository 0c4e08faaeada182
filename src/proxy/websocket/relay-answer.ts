import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { http } from '../../net/node-http.ts';
import { chainInto, streamStages, type BodyGuard, type Redact } from '../leak-guard/response-guard.ts';
import { clientResponseHeaders } from '../headers.ts';
import { runResponseStages } from '../stages/index.ts';

/**
 * Any answer but 101, on the agent's raw socket: redacted like every response, then the connection
 * closes (the socket was taken for the upgrade; it serves no further request).
 */
export function relayAnswer(res: IncomingMessage, socket: Duplex, redact: Redact | undefined, fail: (err: unknown) => void): void {
  const status = res.statusCode ?? 502;
  let head: OutgoingHttpHeaders;
  let body: BodyGuard | undefined;
  try {
    head = clientResponseHeaders(res.headers);
    // No capture on a handshake's answer (no `capture` given): only the leak guard's plans come back.
    body = runResponseStages(head, { status, method: 'GET', headers: res.headers, redact }) as BodyGuard | undefined;
  } catch (err) {
    res.destroy();
    return fail(err);
  }
  res.once('error', () => socket.destroy());
  if (body?.kind === 'whole') {
    const whole = body;
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('end', () => {
      let output: Buffer;
      try {
        output = whole.redact(Buffer.concat(chunks));
      } catch (err) {
        // A body the leak guard refuses whole (a gzip file holding the secret): nothing of it goes.
        return fail(err);
      }
      socket.end(Buffer.concat([formatHead(status, { ...head, 'content-length': String(output.length), connection: 'close' }), output]));
    });
    return;
  }
  // With no Content-Length the body ends when the connection does (close-delimited).
  socket.write(formatHead(status, { ...head, connection: 'close' }));
  if (!body) {
    res.pipe(socket);
    return;
  }
  const entry = chainInto(streamStages(body), socket);
  entry.once('error', () => socket.destroy());
  res.pipe(entry);
}

/** A response head as bytes. The reason phrase is keyway's own: an upstream's could quote anything. */
export function formatHead(status: number, headers: OutgoingHttpHeaders): Buffer {
  let text = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}
