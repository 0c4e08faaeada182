import { once } from 'node:events';
import type { Server } from 'node:http';
import { http } from '../net/node-http.ts';
import type { AddressInfo } from 'node:net';
import { KeywayError } from '../errors/index.ts';

export interface LoopbackCallback {
  /** http://127.0.0.1:PORT/callback */
  redirectUri: string;
  /** Resolves with the authorization code once a callback with the right state arrives. */
  code: Promise<string>;
  close(): Promise<void>;
}

const PAGE = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif;margin:3em"><h1>${title}</h1><p>${text}</p></body>`;

/**
 * The redirect target of a native-app authorization (RFC 8252 7.3): an HTTP server on 127.0.0.1
 * that waits for one callback, checks `state`, and hands over the code. A callback with the wrong
 * state is refused and the flow keeps waiting, so a stray or forged request cannot end it.
 */
export async function startLoopbackCallback(options: {
  state: string;
  port?: number | undefined;
  timeoutMs: number;
  /** The authorization server's issuer, when known (RFC 9207): an `iss` naming another is refused; `required`: so is none. */
  issuer?: { expected: string; required: boolean } | undefined;
}): Promise<LoopbackCallback> {
  let settle: { resolve: (code: string) => void; reject: (err: Error) => void } | undefined;
  const code = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  code.catch(() => undefined); // observed by the caller; avoid an unhandled rejection before then
  const server: Server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    if (url.searchParams.get('state') !== options.state) {
      res
        .writeHead(400, { 'content-type': 'text/html' })
        .end(PAGE('keyway: wrong state', 'This callback does not belong to the running sign-in. Nothing was stored.'));
      return;
    }
    const mixUp = options.issuer === undefined ? undefined : issuerProblem(url.searchParams.get('iss'), options.issuer);
    if (mixUp) {
      res
        .writeHead(400, { 'content-type': 'text/html' })
        .end(PAGE('keyway: not connected', 'The answer did not come from the expected authorization server. Nothing was stored.'));
      settle?.reject(new KeywayError('usage', mixUp));
      return;
    }
    const error = url.searchParams.get('error');
    const value = url.searchParams.get('code');
    if (error || !value) {
      res.writeHead(400, { 'content-type': 'text/html' }).end(PAGE('keyway: not connected', 'The provider did not grant access. You can close this tab.'));
      settle?.reject(new KeywayError('usage', `the provider refused the authorization (${(error ?? 'no code').replace(/[^\w.-]/g, '')})`));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('keyway: connected', 'You can close this tab and return to the terminal.'));
    settle?.resolve(value);
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const timer = setTimeout(
    () => settle?.reject(new KeywayError('usage', `no authorization arrived within ${Math.round(options.timeoutMs / 1000)} s`)),
    options.timeoutMs,
  );
  timer.unref();
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    code,
    close: async () => {
      clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * RFC 9207: the authorization response names the issuer that sent it. One naming another server
 * means a mix-up (a code from one server, spent at another's token endpoint): refused, as is a
 * response without `iss` from a server that says it always sends one.
 */
function issuerProblem(iss: string | null, issuer: { expected: string; required: boolean }): string | undefined {
  if (iss === null) {
    return issuer.required ? `the authorization response has no iss, and ${issuer.expected} says it always sends one (RFC 9207): refused` : undefined;
  }
  if (iss === issuer.expected) return undefined;
  return `the authorization response names the issuer ${JSON.stringify(iss.slice(0, 200))}, not ${issuer.expected} (RFC 9207): refused, as a mix-up of authorization servers`;
}
