import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeKey, type HmacMaterial, type HmacScheme, type Placement } from '../../src/credentials/types/hmac/signing/index.ts';
import { TLS_FIXTURES } from './fixtures.ts';

// An upstream that checks HMAC signatures the way the API behind a scheme would: it reads the
// signature, timestamp, nonce, key id and passphrase from where the scheme says they go, rebuilds
// the bytes to sign from the request it received, and answers 401 with the reason when anything
// is off. Its own request parsing is written apart from the signer's (query.ts), so a signer that
// sent something other than what it signed is caught here.

export interface VerifiedRequest {
  method: string;
  target: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface HmacVerifier {
  port: number;
  /** Requests that passed. */
  accepted: VerifiedRequest[];
  /** Reasons for every 401, in order. */
  refused: string[];
  close(): Promise<void>;
}

export interface HmacVerifierOptions {
  tls?: 'trusted' | 'plain';
  /** Refuse a timestamp further than this from the verifier's clock (default 5 minutes). */
  maxSkewMs?: number;
  now?: () => number;
}

export async function startHmacVerifier(scheme: HmacScheme, material: HmacMaterial, options: HmacVerifierOptions = {}): Promise<HmacVerifier> {
  const accepted: VerifiedRequest[] = [];
  const refused: string[] = [];
  const now = options.now ?? Date.now;
  const maxSkew = options.maxSkewMs ?? 5 * 60_000;
  let lastCounter = -1n;

  const check = (req: IncomingMessage, body: Buffer): string | undefined => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const pairs = q === -1 ? [] : target.slice(q + 1).split('&');
    const formPairs =
      body.length > 0 && String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? body.toString('latin1').split('&') : [];
    const read = (place: Placement): string | undefined => {
      if (place.in === 'header') {
        const value = req.headers[place.name];
        return Array.isArray(value) ? undefined : value;
      }
      const found = (place.in === 'query' ? pairs : formPairs).filter((pair) => decodeURIComponent(pair.split('=')[0] ?? '') === place.name);
      if (found.length !== 1) return undefined; // missing or repeated: a server must not guess which
      const raw = found[0] as string;
      return decodeURIComponent(raw.slice(raw.indexOf('=') + 1).replace(/\+/g, ' '));
    };

    const signature = read(scheme.output.place);
    if (!signature) return `no signature in ${scheme.output.place.in} ${scheme.output.place.name}`;
    if (scheme.keyId && read(scheme.keyId) !== material.keyId) return `unknown key id in ${scheme.keyId.in} ${scheme.keyId.name}`;
    if (scheme.passphrase && read(scheme.passphrase) !== material.passphrase) return `wrong passphrase in ${scheme.passphrase.in} ${scheme.passphrase.name}`;

    let timestamp: string | undefined;
    if (scheme.timestamp?.place) {
      timestamp = read(scheme.timestamp.place);
      if (!timestamp) return `no timestamp in ${scheme.timestamp.place.in} ${scheme.timestamp.place.name}`;
      const format = scheme.timestamp.format;
      const ms = format === 'iso8601' ? Date.parse(timestamp) : Number(timestamp) * (format === 'unix_seconds' ? 1000 : 1);
      if (!Number.isFinite(ms)) return `timestamp ${timestamp} is not ${format}`;
      if (Math.abs(now() - ms) > maxSkew) return `timestamp ${timestamp} is too far from the server's clock`;
    }
    let nonce: string | undefined;
    if (scheme.nonce?.place) {
      nonce = read(scheme.nonce.place);
      if (!nonce) return `no nonce in ${scheme.nonce.place.in} ${scheme.nonce.place.name}`;
      if (scheme.nonce.format.startsWith('counter_')) {
        if (!/^\d+$/.test(nonce)) return `nonce ${nonce} is not a counter`;
        if (BigInt(nonce) <= lastCounter) return `nonce ${nonce} is not larger than the last one (${lastCounter})`;
      }
    }

    // The signed query is the one received, less the signature when that travels in it.
    const output = scheme.output.place;
    const signedQuery =
      output.in === 'query' ? pairs.filter((pair) => decodeURIComponent(pair.split('=')[0] ?? '') !== output.name).join('&') : pairs.join('&');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers))
      if (value !== undefined && !(output.in === 'header' && name === output.name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    const message = scheme.message({
      method: req.method ?? 'GET',
      path,
      query: signedQuery,
      body,
      host: req.headers.host ?? '',
      headers,
      timestamp,
      nonce,
      keyId: material.keyId,
    });
    const expected = createHmac(scheme.algorithm, decodeKey(material.key, scheme.keyEncoding)).update(message).digest();
    const given = Buffer.from(signature, scheme.output.encoding);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'signature does not match';
    if (nonce !== undefined && scheme.nonce?.format.startsWith('counter_')) lastCounter = BigInt(nonce);
    return undefined;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const reason = check(req, body);
      if (reason) {
        refused.push(reason);
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_signature', reason }));
        return;
      }
      accepted.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers, body: body.toString('latin1') });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
    });
  };
  const server: Server =
    options.tls === 'plain' ? createHttpServer(onRequest) : createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    refused,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
