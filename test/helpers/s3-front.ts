// A real S3 for tests: s3rver (npm) on 127.0.0.1:0, its data in a temp folder, behind a loopback
// HTTPS front that checks every request's AWS Signature Version 4 against the real key before
// passing it on. The front exists because s3rver 3.7 alone proves nothing about signing: for SigV4
// it looks up the access key id and never computes the signature, and it stores an aws-chunked body
// as sent, chunk headers and all. So the front verifies, with @smithy/signature-v4 (sigv4-verifier.ts):
//   - header-signed requests: the signature over exactly the SignedHeaders listed, every x-amz-*
//     header signed, host signed, x-amz-date within 15 minutes, the credential scope's day;
//   - x-amz-content-sha256: a hex hash equals the SHA-256 of the bytes received; UNSIGNED-PAYLOAD
//     as is; STREAMING-UNSIGNED-PAYLOAD-TRAILER decoded and its trailing checksum (crc32, sha1,
//     sha256) checked; STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER) every chunk signature in the
//     chain from the seed signature, and the trailer signature;
//   - presigned URLs: X-Amz-Signature over the query, X-Amz-Expires not passed;
//   - Content-MD5 and x-amz-checksum-* headers against the payload;
// then hands s3rver the request as S3 itself would see it: aws-chunked decoded, Content-Length the
// decoded length, Content-Encoding aws-chunked and x-amz-decoded-content-length removed, the
// signature removed (s3rver then serves it anonymously), a virtual-hosted bucket moved into the path.
// A refusal is S3's XML error (SignatureDoesNotMatch, 403, ...) with the reason in <Message>.
// `seen` records every request, refused or not, for tests to assert on what a client (or keyway)
// actually sent. Host names: the certificate covers AWS_TEST_HOSTS (and *.s3… for buckets); tests
// reach them only through keyway's `proxy.hosts` or a client's own lookup to 127.0.0.1.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingHttpHeaders, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AwsKey, type Refused, type Verified, verifySigV4 } from './sigv4-verifier.ts';
import { AWS_TEST_HOSTS, mintTestLeaf } from './test-leaf.ts';

export interface S3FrontOptions {
  /** The real keys (a function: read per request, for keys issued later). */
  keys: AwsKey[] | (() => AwsKey[]);
  /** Buckets that exist from the start. */
  buckets?: string[];
  /** Refuse a signature scoped to another region (AWS answers AuthorizationHeaderMalformed). */
  region?: string;
  /** Names that are the S3 endpoint; `BUCKET.NAME` is then a virtual-hosted bucket. */
  serviceHosts?: string[];
  /** The clock the signature's date is checked against. */
  now?: () => number;
}

export interface SeenS3Request {
  method: string;
  /** Host header as received (with the port). */
  host: string;
  /** Request target as received. */
  url: string;
  /** Every header as received: a test can check that no placeholder or stale signature got through. */
  headers: IncomingHttpHeaders;
  /** Bucket from the host name, when virtual-hosted. */
  virtualBucket?: string;
  auth: 'header' | 'query' | 'none';
  /** x-amz-content-sha256 ('sha256' for a hex hash, 'absent' for none; the hash used for presigned). */
  payloadMode?: string;
  signedHeaders: string[];
  accessKeyId?: string;
  region?: string;
  securityToken: boolean;
  contentEncoding?: string;
  transferEncoding?: string;
  contentLength?: string;
  decodedContentLength?: string;
  /** x-amz-trailer, and the sizes of the data chunks of an aws-chunked body. */
  trailer?: string;
  chunkSizes?: number[];
  checksum?: { name: string; verified: boolean };
  bodyBytes: number;
  payloadBytes?: number;
  refused?: { status: number; code: string; reason: string };
  /** The status the client got. */
  status?: number;
}

export interface S3Front {
  port: number;
  /** https://s3.example.test:PORT: reach it with a lookup (or keyway's proxy.hosts) to 127.0.0.1. */
  url: string;
  /** The CA that issued the front's certificate (TLS_FIXTURES). */
  caPath: string;
  seen: SeenS3Request[];
  /** s3rver's own port, plain HTTP on 127.0.0.1 (never hand it to a client under test). */
  backendPort: number;
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;

const MAX_BODY = 64 * 1024 * 1024;
const DEFAULT_SERVICE_HOSTS = AWS_TEST_HOSTS.filter((h) => h.startsWith('s3.'));

const xmlEscape = (s: string) => s.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`);

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>${randomUUID()}</RequestId></Error>`;
}

/** Headers S3 would act on after it has checked the signature and decoded the body. */
function forwardHeaders(req: IncomingMessage, verified: Verified): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const drop = new Set([
    'authorization',
    'host',
    'connection',
    'expect',
    'transfer-encoding',
    'x-amz-decoded-content-length',
    'x-amz-trailer',
    'x-amz-security-token',
    'x-amz-content-sha256',
    'x-amz-date',
  ]);
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values === undefined || drop.has(name)) continue;
    out[name] = values.length === 1 ? values[0]! : values;
  }
  const encodings = (req.headers['content-encoding'] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e !== 'aws-chunked');
  if (encodings.length > 0) out['content-encoding'] = encodings.join(', ');
  else delete out['content-encoding'];
  out['content-length'] = String(verified.payload.length);
  return out;
}

/** The request target s3rver gets: path-style, the presigned-URL parameters gone. */
function backendTarget(url: string, virtualBucket: string | undefined): string {
  const qAt = url.indexOf('?');
  const path = qAt < 0 ? url : url.slice(0, qAt);
  const query =
    qAt < 0
      ? []
      : url
          .slice(qAt + 1)
          .split('&')
          .filter((p) => p !== '' && !/^x-amz-/i.test(p));
  const full = virtualBucket === undefined ? path : `/${virtualBucket}${path === '/' ? '' : path}`;
  return query.length > 0 ? `${full}?${query.join('&')}` : full || '/';
}

export async function startS3Front(options: S3FrontOptions): Promise<S3Front> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name, configs: [] })),
  });
  const backend = await s3rver.run();
  const serviceHosts = options.serviceHosts ?? DEFAULT_SERVICE_HOSTS;
  const seen: SeenS3Request[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const host = req.headers.host ?? '';
    const hostName = host.replace(/:\d+$/, '').toLowerCase();
    const service = serviceHosts.find((s) => hostName.endsWith(`.${s}`));
    const virtualBucket = service === undefined ? undefined : hostName.slice(0, -service.length - 1);
    const record: SeenS3Request = {
      method: req.method ?? '',
      host,
      url: req.url ?? '/',
      headers: req.headers,
      ...(virtualBucket !== undefined ? { virtualBucket } : {}),
      auth: 'none',
      signedHeaders: [],
      securityToken: req.headers['x-amz-security-token'] !== undefined || /[?&]X-Amz-Security-Token=/.test(req.url ?? ''),
      ...pick(req, 'content-encoding', 'contentEncoding'),
      ...pick(req, 'transfer-encoding', 'transferEncoding'),
      ...pick(req, 'content-length', 'contentLength'),
      ...pick(req, 'x-amz-decoded-content-length', 'decodedContentLength'),
      ...pick(req, 'x-amz-trailer', 'trailer'),
      bodyBytes: 0,
    };
    seen.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) {
      record.bodyBytes += chunk.length;
      if (record.bodyBytes > MAX_BODY)
        return refuseWith(res, record, { ok: false, status: 413, code: 'EntityTooLarge', reason: `the test front holds at most ${MAX_BODY} bytes` });
      chunks.push(chunk);
    }
    const result = await verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headersDistinct, body: Buffer.concat(chunks) },
      { keys: options.keys, service: 's3', ...(options.region !== undefined ? { region: options.region } : {}), ...(options.now ? { now: options.now } : {}) },
    );
    if (!result.ok) {
      if (result.accessKeyId !== undefined) record.accessKeyId = result.accessKeyId;
      if (result.payloadMode !== undefined) record.payloadMode = result.payloadMode;
      if (result.signedHeaders !== undefined) record.signedHeaders = result.signedHeaders;
      if (authKind(req) !== 'none') record.auth = authKind(req);
      return refuseWith(res, record, result);
    }
    Object.assign(record, {
      auth: result.auth,
      payloadMode: result.payloadMode,
      signedHeaders: result.signedHeaders,
      accessKeyId: result.accessKeyId,
      region: result.region,
      payloadBytes: result.payload.length,
      ...(result.chunkSizes ? { chunkSizes: result.chunkSizes } : {}),
      ...(result.checksum ? { checksum: result.checksum } : {}),
    });
    const upstream = httpRequest({
      host: '127.0.0.1',
      port: backend.port,
      method: req.method,
      path: backendTarget(req.url ?? '/', virtualBucket),
      headers: { ...forwardHeaders(req, result), host: `127.0.0.1:${backend.port}` },
    });
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/xml' }).end(errorXml('InternalError', `s3rver: ${error.message}`));
      else res.destroy();
    });
    upstream.end(result.payload);
  };

  const { cert, key } = mintTestLeaf();
  const server: Server = createServer({ cert, key }, (req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/xml' }).end(errorXml('InternalError', error.message));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://s3.example.test:${port}`,
    caPath: new URL('../fixtures/tls/upstream-ca.pem', import.meta.url).pathname,
    seen,
    backendPort: backend.port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await s3rver.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

function authKind(req: IncomingMessage): SeenS3Request['auth'] {
  if (req.headers.authorization !== undefined) return 'header';
  return /[?&]X-Amz-Signature=/.test(req.url ?? '') ? 'query' : 'none';
}

function pick<K extends keyof SeenS3Request>(req: IncomingMessage, name: string, as: K): Partial<SeenS3Request> {
  const value = req.headers[name];
  return typeof value === 'string' ? { [as]: value } : {};
}

function refuseWith(res: ServerResponse, record: SeenS3Request, refusal: Refused): void {
  record.refused = { status: refusal.status, code: refusal.code, reason: refusal.reason };
  res.writeHead(refusal.status, { 'content-type': 'application/xml', connection: 'close' });
  res.end(record.method === 'HEAD' ? undefined : errorXml(refusal.code, refusal.reason));
}
