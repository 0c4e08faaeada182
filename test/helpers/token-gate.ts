// The token gate of the OAuth process tests (one home, and replicas on PostgreSQL).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface Parked {
  closed: boolean;
}

/**
 * A pass-through in front of the provider's token endpoint that can hold requests: a held request
 * is never forwarded, so killing the keyway process that sent it leaves the provider untouched
 * (as a crash before the request left would). The auth server's own 'slow' mode would forward it
 * after its delay, and the provider would then rotate a refresh token nobody stored.
 */
export interface Gate {
  url: string;
  hold: boolean;
  parked: Parked[];
  forwarded: number;
  close(): Promise<void>;
}

export async function startGate(target: string): Promise<Gate> {
  const gate: Gate = { url: '', hold: false, parked: [], forwarded: 0, close: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (gate.hold) {
        const parked: Parked = { closed: false };
        gate.parked.push(parked);
        res.on('close', () => (parked.closed = true));
        return;
      }
      gate.forwarded++;
      const headers: Record<string, string> = {};
      for (const name of ['authorization', 'content-type', 'accept']) {
        const v = req.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
      request(target, { method: 'POST', headers, body: Buffer.concat(chunks) })
        .then(async (up) => {
          const text = await up.body.text();
          res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') }).end(text);
        })
        .catch(() => res.destroy());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  gate.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return gate;
}
