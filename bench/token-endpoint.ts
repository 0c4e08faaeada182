// A small OAuth2 token endpoint for scenario s6, on http://127.0.0.1:0 (keyway allows plain http
// for token endpoints on loopback). It serves only POST /token with grant_type=refresh_token and
// rotates like a strict provider: every answer carries a new access token, a new refresh token and
// expires_in; the refresh token it gave before is refused afterwards (400 invalid_grant), so a
// refresh storm (two refreshes for one expiry) shows up as failures instead of passing unseen.
//
// It also decides which access tokens the bench upstream accepts: the current one and the one it
// replaced (requests in flight around a rotation), each only until its own expiry plus a second, so
// a keyway that stopped refreshing would be refused too.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenEndpointOptions {
  clientId: string;
  clientSecret: string;
  /** The refresh token stored in the grant at setup: the first one this endpoint accepts. */
  initialRefreshToken: string;
  /** expires_in of every access token it issues, in seconds. */
  lifetimeS: number;
}

export interface TokenEndpointCounts {
  /** Every request to the endpoint, whatever the outcome. */
  calls: number;
  /** Refreshes answered with new tokens. */
  refreshed: number;
  /** Refused: a refresh token that was already used (or never issued). */
  invalidGrant: number;
  /** Refused: wrong or missing client authentication. */
  invalidClient: number;
  /** Refused: anything else (path, method, grant type, body). */
  otherErrors: number;
}

export type TokenCheck = 'current' | 'previous' | 'expired' | 'unknown' | 'missing';

export interface BenchTokenEndpoint {
  port: number;
  url: string;
  counts: TokenEndpointCounts;
  /** performance.now() of every successful refresh, in order. */
  refreshTimes: number[];
  /** How the upstream should treat an Authorization header on the OAuth host. */
  check(authorization: string | undefined): TokenCheck;
  /** Closes kept-alive connections that carry no request now (as an upstream does when idle). */
  closeIdle(): void;
  close(): Promise<void>;
}

interface Issued {
  token: string;
  /** Date.now() after which it is refused (its expiry plus a second for requests in flight). */
  validUntil: number;
}

const GRACE_MS = 1_000;
const MAX_BODY = 16 * 1024;
const fresh = (prefix: string) => `${prefix}-${randomBytes(24).toString('base64url')}`;

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startTokenEndpoint(options: TokenEndpointOptions): Promise<BenchTokenEndpoint> {
  const counts: TokenEndpointCounts = { calls: 0, refreshed: 0, invalidGrant: 0, invalidClient: 0, otherErrors: 0 };
  const refreshTimes: number[] = [];
  let expectedRefresh = options.initialRefreshToken;
  let current: Issued | undefined;
  let previous: Issued | undefined;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;

  const answer = (res: ServerResponse, status: number, body: object) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) }).end(text);
  };

  const clientOk = (req: IncomingMessage, params: URLSearchParams): boolean => {
    const header = req.headers.authorization;
    if (header !== undefined) return sameText(header, basic);
    // client_secret_post, in case keyway is set to client_auth: body.
    return params.get('client_id') === options.clientId && sameText(params.get('client_secret') ?? '', options.clientSecret);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    counts.calls++;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://127.0.0.1').pathname !== '/token' || size > MAX_BODY) {
        counts.otherErrors++;
        answer(res, 404, { error: 'not_found' });
        return;
      }
      const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      if (!clientOk(req, params)) {
        counts.invalidClient++;
        answer(res, 401, { error: 'invalid_client' });
        return;
      }
      if (params.get('grant_type') !== 'refresh_token') {
        counts.otherErrors++;
        answer(res, 400, { error: 'unsupported_grant_type' });
        return;
      }
      if (!sameText(params.get('refresh_token') ?? '', expectedRefresh)) {
        counts.invalidGrant++;
        answer(res, 400, { error: 'invalid_grant' });
        return;
      }
      // Rotation: the refresh token just used is dead from now on.
      const accessToken = fresh('bench-at');
      expectedRefresh = fresh('bench-rt');
      previous = current;
      current = { token: accessToken, validUntil: Date.now() + options.lifetimeS * 1000 + GRACE_MS };
      counts.refreshed++;
      refreshTimes.push(performance.now());
      answer(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: options.lifetimeS, refresh_token: expectedRefresh });
    });
  };

  const server = createServer({ keepAliveTimeout: 30_000 }, onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/token`,
    counts,
    refreshTimes,
    check: (authorization) => {
      if (authorization === undefined || !authorization.startsWith('Bearer ')) return 'missing';
      const token = authorization.slice('Bearer '.length);
      const now = Date.now();
      for (const [issued, name] of [
        [current, 'current'],
        [previous, 'previous'],
      ] as const) {
        if (issued && issued.token === token) return now <= issued.validUntil ? name : 'expired';
      }
      return 'unknown';
    },
    closeIdle: () => server.closeIdleConnections(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
