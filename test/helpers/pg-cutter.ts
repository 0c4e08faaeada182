// A loopback TCP relay in front of a test PostgreSQL that can lose one answer on purpose: armed, it
// lets the next statement that matches through to the server, waits until the server has answered
// it (ReadyForQuery: the statement has committed), then closes both sides without passing the
// answer on. The client is left not knowing whether its write committed, which is the case a
// writer's retry must handle without writing twice. Plain connections only (no TLS).
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface PgCutter {
  /** postgres://… through the relay, for the given direct URL. */
  urlFor(direct: string): string;
  /** The next client message containing `marker` is answered by the server but the answer is lost. */
  arm(marker: string): void;
  /** Resolves once an armed cut has happened. */
  cut(): Promise<void>;
  close(): Promise<void>;
}

// ReadyForQuery: 'Z', length 5, then the transaction status byte.
const READY = Buffer.from([0x5a, 0, 0, 0, 5]);

export async function startPgCutter(targetPort: number): Promise<PgCutter> {
  let marker: string | null = null;
  let markCut: () => void = () => undefined;
  let cutDone = new Promise<void>((resolve) => (markCut = resolve));
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let cutting = false;
    let answer = Buffer.alloc(0);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      if (marker !== null && chunk.includes(marker)) {
        marker = null;
        cutting = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cutting) {
        client.write(chunk);
        return;
      }
      answer = Buffer.concat([answer, chunk]);
      if (answer.includes(READY)) {
        end();
        markCut();
      }
    });
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    urlFor(direct) {
      const url = new URL(direct);
      url.port = String(port);
      return url.toString();
    },
    arm(text) {
      marker = text;
      cutDone = new Promise<void>((resolve) => (markCut = resolve));
    },
    cut: () => cutDone,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
