// A loopback stand-in for GitHub, for github_app grants. On the API host: the app endpoints
// (GET /app/installations, POST /app/installations/{id}/access_tokens), which verify the app JWT
// with the app's public key (jose) and refuse anything else, and one API route that wants the
// newest installation token as Bearer. On the git host: real `git http-backend` run as CGI behind
// HTTPS, for clone and push, that wants Basic x-access-token:<newest token> and refuses the rest.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import { CANARY, TLS_FIXTURES } from './fixtures.ts';

export interface GitHubDouble {
  port: number;
  /** Tokens minted, oldest first. */
  tokens: string[];
  /** Each token request: its installation, and the repositories and permissions asked for. */
  mints: Array<{ installation: string; body: unknown; jwtLifetime: number }>;
  /** Why a request was refused (JWT, token, installation). */
  refused: string[];
  /** What git http-backend served, by path: so a test sees a push reach the repository. */
  gitCalls: string[];
  /** Token lifetime for the next mints, seconds. */
  setLifetime(seconds: number): void;
  /** Hold each token answer this long (so that other processes' requests arrive while a mint is in flight). */
  setDelay(ms: number): void;
  /** Revokes the newest token, as an admin revoking an installation token would: the API refuses it from now on. */
  revokeNewest(): void;
  /** From now on the token endpoint fails (500), or works again. */
  failMints(on: boolean): void;
  /** From now on every token is refused by the API (401), or not. */
  refuseAll(on: boolean): void;
  close(): Promise<void>;
}

export async function startGitHubDouble(options: {
  appId: string;
  publicKey: KeyObject;
  installations: number[];
  apiHost: string;
  gitHost: string;
  /** The folder git http-backend serves (GIT_PROJECT_ROOT). */
  gitRoot: string;
  now: () => number;
}): Promise<GitHubDouble> {
  const tokens: string[] = [];
  const mints: GitHubDouble['mints'] = [];
  const refused: string[] = [];
  const gitCalls: string[] = [];
  let lifetime = 3600;
  let delayMs = 0;
  let failing = false;
  let refusing = false;
  const revoked = new Set<string>();
  const json = (res: ServerResponse, status: number, value: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));

  async function appJwt(req: IncomingMessage): Promise<number | undefined> {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return undefined;
    try {
      const { payload } = await jwtVerify(auth.slice(7), options.publicKey, {
        issuer: options.appId,
        algorithms: ['RS256'],
        currentDate: new Date(options.now()),
      });
      const span = (payload.exp ?? 0) - (payload.iat ?? 0);
      if (span > 600) throw new Error(`a JWT of ${span} s (GitHub takes at most 10 minutes)`);
      return span;
    } catch (err) {
      refused.push(`app JWT: ${(err as Error).message}`);
      return undefined;
    }
  }

  async function api(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const url = new URL(req.url ?? '/', 'https://x');
    if (url.pathname.startsWith('/app/')) {
      const span = await appJwt(req);
      if (span === undefined) return json(res, 401, { message: 'A JSON web token could not be decoded' });
      if (req.method === 'GET' && url.pathname === '/app/installations')
        return json(
          res,
          200,
          options.installations.map((id) => ({ id })),
        );
      const match = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(url.pathname);
      if (req.method !== 'POST' || !match) return json(res, 404, { message: 'Not Found' });
      if (!options.installations.includes(Number(match[1]))) return json(res, 404, { message: 'Not Found' });
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (failing) return json(res, 500, { message: 'Server Error' });
      const token = `ghs_${CANARY.replace(/-/g, '')}${String(tokens.length + 1).padStart(4, '0')}`;
      tokens.push(token);
      mints.push({ installation: match[1]!, body: body.length ? JSON.parse(body.toString()) : {}, jwtLifetime: span });
      return json(res, 201, { token, expires_at: new Date(options.now() + lifetime * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    }
    if (req.headers.authorization !== `Bearer ${tokens.at(-1)}` || tokens.length === 0 || refusing || revoked.has(tokens.at(-1)!)) {
      refused.push(
        `api: ${req.headers.authorization === undefined ? 'no token' : refusing || revoked.has(tokens.at(-1)!) ? 'revoked' : 'not the newest token'}`,
      );
      return json(res, 401, { message: 'Bad credentials' });
    }
    return json(res, 200, { full_name: 'acme/widgets', private: true });
  }

  async function gitBackend(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const expected = tokens.length === 0 ? undefined : `Basic ${Buffer.from(`x-access-token:${tokens.at(-1)}`).toString('base64')}`;
    if (expected === undefined || req.headers.authorization !== expected) {
      refused.push(`git: ${req.headers.authorization === undefined ? 'no credentials' : 'wrong credentials'}`);
      res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' }).end('denied');
      return;
    }
    const url = new URL(req.url ?? '/', 'https://x');
    gitCalls.push(`${req.method} ${url.pathname}${url.search}`);
    const cgi = spawn('/usr/lib/git-core/git-http-backend', [], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: options.gitRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        // Set for an authenticated user: http-backend then takes pushes (receive-pack).
        REMOTE_USER: 'x-access-token',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: String(body.length),
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    // http-backend may answer and exit without reading its input (a GET, a refusal): the write
    // then fails with EPIPE, which must not become an uncaught exception; the CGI's answer stands.
    cgi.stdin.on('error', () => {});
    cgi.stdin.end(body);
    const out: Buffer[] = [];
    cgi.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    await once(cgi, 'close');
    const all = Buffer.concat(out);
    let split = all.indexOf('\r\n\r\n');
    let sep = 4;
    if (split === -1) {
      split = all.indexOf('\n\n');
      sep = 2;
    }
    const head = all.subarray(0, split).toString('latin1').split(/\r?\n/);
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else headers[name] = value;
    }
    res.writeHead(status, headers).end(all.subarray(split + sep));
  }

  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const body = Buffer.concat(chunks);
      const handle = host === options.gitHost ? gitBackend : host === options.apiHost ? api : undefined;
      if (!handle) return void res.writeHead(421).end();
      handle(req, res, body).catch(() => res.writeHead(500).end());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    tokens,
    mints,
    refused,
    gitCalls,
    setLifetime: (seconds) => {
      lifetime = seconds;
    },
    setDelay: (ms) => {
      delayMs = ms;
    },
    revokeNewest: () => {
      const newest = tokens.at(-1);
      if (newest) revoked.add(newest);
    },
    failMints: (on) => {
      failing = on;
    },
    refuseAll: (on) => {
      refusing = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
