// The benchmark's upstream: a real HTTPS server on 127.0.0.1:0 for *.bench.test, with a leaf signed
// by the test upstream CA (test/fixtures/tls), that answers 401 unless the request carries the
// bench credential. It counts what arrives without the credential. Requests for the OAuth host of
// scenario s6 are checked against the bench token endpoint's access tokens instead, and counted apart;
// so are those for the SigV4 host of s8/s9, which must carry keyway's signature (aws-host.ts).
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import type { AwsHost } from './aws-host.ts';
import { answerMessages, MESSAGES_PATH, MODEL_SAN } from './model-api.ts';
import { subjectKeyIdentifierOf } from '../src/tls/der.ts';
import { certificateToPem, forgePublicKey, opensslSigner } from './forge-sign.ts';
import { randomSerial } from '../src/tls/x509-util.ts';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import type { TokenCheck } from './token-endpoint.ts';

/** Marks requests that the benchmark sent through keyway, so the upstream can count them apart. */
export const VIA_HEADER = 'x-bench-via';

export interface UpstreamCounts {
  total: number;
  viaKeyway: number;
  /** Requests without `Authorization: Bearer <secret>`, from any route. */
  withoutCredential: number;
  /** Of those, the ones that came through keyway: keyway failed to inject. */
  withoutCredentialViaKeyway: number;
  /** TLS connections, classified by the first request on each: how well each route reuses them. */
  connectionsDirect: number;
  connectionsViaKeyway: number;
  /** The same for the peers measured beside keyway (squid, floor), by their marker. */
  viaPeer: Record<string, PeerCounts>;
  /** Requests for the OAuth host (s6); none of them is counted in the fields above. */
  oauth: OAuthHostCounts;
}

export interface PeerCounts {
  requests: number;
  withoutCredential: number;
  connections: number;
}

export interface OAuthHostCounts {
  total: number;
  /** 200s: the current access token, or the one it replaced moments ago. */
  okCurrent: number;
  okPrevious: number;
  /** 401s: an access token past its expiry (plus a second), one never issued, or none. */
  refusedExpired: number;
  refusedUnknown: number;
  refusedMissing: number;
}

/** The s6 host: its requests must carry a token from the bench token endpoint. */
export interface OAuthHostCheck {
  host: string;
  check(authorization: string | undefined): TokenCheck;
}

export interface BenchUpstream {
  port: number;
  counts: UpstreamCounts;
  /** Closes kept-alive connections that carry no request now (as an upstream does when idle). */
  closeIdle(): void;
  close(): Promise<void>;
}

const CA_KEY_PATH = fileURLToPath(new URL('../test/fixtures/tls/upstream-ca-key.pem', import.meta.url));
const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, note: 'small response for the keyway benchmark', n: 42 }));
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** A leaf for *.bench.test, bench.test and `extraNames`, signed by the test upstream CA, valid for one day. */
export function benchLeaf(extraNames: readonly string[] = []): { cert: string; key: string } {
  const caCert = forge.pki.certificateFromPem(TLS_FIXTURES.ca);
  const caKey = createPrivateKey(readFileSync(CA_KEY_PATH, 'utf8'));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublicKey(publicKey);
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 24 * 60 * 60 * 1000);
  cert.setSubject([{ shortName: 'CN', value: 'bench.test' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [{ type: 2, value: '*.bench.test' }, { type: 2, value: 'bench.test' }, ...extraNames.map((value) => ({ type: 2, value }))],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifierOf(new X509Certificate(TLS_FIXTURES.ca).raw)?.toString('binary') },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(opensslSigner(caKey), forge.md.sha256.create());
  return { cert: certificateToPem(cert), key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * Routes: /small (a ~90-byte JSON body), /download?n=N (N bytes, streamed in 64 KiB writes),
 * /upload (counts the body, answers {"bytes":N}), /mcp and /rpc (s10: a JSON-RPC request in, a
 * small result with its id out; keyway reads /mcp as an MCP endpoint and /rpc as any path),
 * /v1/messages (s2m: a small Anthropic Messages answer with usage, JSON or SSE; bench/model-api.ts).
 */
export async function startBenchUpstream(secret: string, oauth?: OAuthHostCheck, aws?: AwsHost): Promise<BenchUpstream> {
  const expected = `Bearer ${secret}`;
  const counts: UpstreamCounts = {
    total: 0,
    viaKeyway: 0,
    withoutCredential: 0,
    withoutCredentialViaKeyway: 0,
    connectionsDirect: 0,
    connectionsViaKeyway: 0,
    viaPeer: {},
    oauth: { total: 0, okCurrent: 0, okPrevious: 0, refusedExpired: 0, refusedUnknown: 0, refusedMissing: 0 },
  };
  const sockets = new WeakSet<object>();
  const { cert, key } = benchLeaf([...(oauth ? [oauth.host] : []), ...(aws ? [aws.host] : []), MODEL_SAN]);
  const hostPattern = (host: string) => new RegExp(`^${host.replaceAll('.', '\\.')}(:\\d+)?$`, 'i');
  const oauthHost = oauth ? hostPattern(oauth.host) : undefined;
  const awsHostName = aws ? hostPattern(aws.host) : undefined;

  const onOAuthRequest = (req: IncomingMessage, res: ServerResponse, check: OAuthHostCheck['check']) => {
    const o = counts.oauth;
    o.total++;
    req.resume();
    const verdict = check(req.headers.authorization);
    if (verdict === 'current' || verdict === 'previous') {
      if (verdict === 'current') o.okCurrent++;
      else o.okPrevious++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(SMALL_BODY.length) }).end(SMALL_BODY);
      return;
    }
    if (verdict === 'expired') o.refusedExpired++;
    else if (verdict === 'unknown') o.refusedUnknown++;
    else o.refusedMissing++;
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"error":"invalid_token"}');
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (oauth && oauthHost?.test(req.headers.host ?? '')) return onOAuthRequest(req, res, oauth.check);
    if (aws && awsHostName?.test(req.headers.host ?? '')) return aws.onRequest(req, res, serve);
    counts.total++;
    const marker = req.headers[VIA_HEADER];
    const via = marker === 'keyway';
    if (typeof marker === 'string' && !via && counts.viaPeer[marker] === undefined)
      counts.viaPeer[marker] = { requests: 0, withoutCredential: 0, connections: 0 };
    const peer = typeof marker === 'string' && !via ? counts.viaPeer[marker] : undefined;
    if (via) counts.viaKeyway++;
    if (peer) peer.requests++;
    if (!sockets.has(req.socket)) {
      sockets.add(req.socket);
      if (via) counts.connectionsViaKeyway++;
      else if (peer) peer.connections++;
      else counts.connectionsDirect++;
    }
    if (req.headers.authorization !== expected) {
      counts.withoutCredential++;
      if (via) counts.withoutCredentialViaKeyway++;
      if (peer) peer.withoutCredential++;
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    serve(req, res);
  };

  /** The routes, once the request's credential has been checked. */
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://upstream.bench.test');
    switch (url.pathname) {
      case '/small':
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(SMALL_BODY.length) }).end(SMALL_BODY);
        return;
      case '/download': {
        req.resume();
        const total = Math.min(Number(url.searchParams.get('n') ?? '0') || 0, 64 * 1024 * 1024);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            const piece = CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
            sent += piece.length;
            if (!res.write(piece)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      case '/upload': {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => {
          const body = JSON.stringify({ bytes });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
        });
        return;
      }
      case '/mcp':
      case '/rpc':
        return answerRpc(req, res);
      case MESSAGES_PATH:
        return answerMessages(req, res);
      default:
        req.resume();
        res.writeHead(404).end();
    }
  };

  const server: Server = createServer({ cert, key, keepAliveTimeout: 30_000 }, onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    closeIdle: () => server.closeIdleConnections(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The most of a JSON-RPC request /mcp and /rpc read; past it, 413. */
const MAX_RPC_BODY = 64 * 1024;

/** A JSON-RPC request in, `{"jsonrpc":"2.0","id":…,"result":{…}}` out, as an MCP server answers a tools/call. */
function answerRpc(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_RPC_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_RPC_BODY) return void res.writeHead(413).end();
    let id: unknown;
    try {
      id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id;
    } catch {
      return void res.writeHead(400).end();
    }
    const body = JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ok' }], isError: false } });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
  });
}
