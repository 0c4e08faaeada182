// A client for the split-write smuggling test: one connection to keyway (absolute-form, or CONNECT
// then TLS to keyway's intercepting server), the request written in pieces, each its own write (its
// own TLS record inside the tunnel). After the first piece it waits for keyway's answer, so the
// parser has refused before the rest arrives; the rest follows with a pause before each piece, and
// keeps coming after keyway's answer and FIN (the connection is half-open on this side).

import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectThrough, HANG_MS, startTls } from './raw-client.ts';

export interface SplitRun {
  /** The address this connection came from (keyway's audit lines name it as `client`). */
  source: string;
  /** The CONNECT authority and TLS server name, for the tunnel; absent: absolute-form. */
  tunnel?: { authority: string; servername: string; ca: string };
  pieces: string[];
  /** Pause before each piece after the first. */
  pauseMs: number;
}

export interface SplitOutcome {
  /** Everything keyway sent on the connection (inside TLS for the tunnel). */
  received: string;
  /** Whether keyway answered before the second piece was written. */
  answeredAfterFirst: boolean;
  /** Pieces after the first that this side wrote without an error. */
  writtenAfter: number;
}

export async function sendInPieces(proxyPort: number, run: SplitRun): Promise<SplitOutcome> {
  const socket = netConnect({ host: '127.0.0.1', port: proxyPort, localAddress: run.source, allowHalfOpen: true });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  try {
    let stream: Duplex = socket;
    if (run.tunnel) {
      const status = await connectThrough(socket, run.tunnel.authority);
      if (status !== 200) throw new Error(`CONNECT ${run.tunnel.authority} answered ${status}`);
      stream = await startTls(socket, run.tunnel.servername, run.tunnel.ca);
      stream.on('error', () => undefined);
    }
    let received = '';
    stream.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    stream.resume(); // connectThrough paused the socket to hand it over
    const [first = '', ...rest] = run.pieces;
    await write(stream, first);
    const answeredAfterFirst = await until(() => received.includes('\r\n\r\n'), HANG_MS);
    let writtenAfter = 0;
    for (const piece of rest) {
      await sleep(run.pauseMs);
      if (await write(stream, piece)) writtenAfter++;
    }
    stream.end();
    await until(() => stream.readableEnded || stream.destroyed, HANG_MS);
    return { received, answeredAfterFirst, writtenAfter };
  } finally {
    socket.destroy();
  }
}

/** Resolves true once the piece was handed to the kernel, false when the write failed. */
function write(stream: Duplex, piece: string): Promise<boolean> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => stream.write(Buffer.from(piece, 'latin1'), (err) => resolve(!err)));
}

/** Polls `done` until it holds (true) or `ms` pass (false). */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; !done(); ) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
