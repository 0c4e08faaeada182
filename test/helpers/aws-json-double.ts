// A loopback service of the AWS JSON protocol shape (POST /, X-Amz-Target: PREFIX.Operation,
// Content-Type: application/x-amz-json-1.0 or 1.1, no x-amz-content-sha256: the body hash is part
// of the signature), which is how DynamoDB, Secrets Manager, KMS, CloudWatch Logs and most newer
// services are called. It checks each request's Signature Version 4 with sigv4-verifier.ts and
// answers with what `handler` returns (by default DynamoDB's ListTables shape), or with the JSON
// error AWS gives for a bad signature.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createPlainServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type AwsKey, type Refused, verifySigV4 } from './sigv4-verifier.ts';
import { mintTestLeaf } from './test-leaf.ts';

export interface JsonCall {
  target: string;
  /** Every header as received. */
  headers: IncomingHttpHeaders;
  body: unknown;
  accessKeyId: string;
  region: string;
  service: string;
  signedHeaders: string[];
  payloadMode: string;
  securityToken: boolean;
}

export interface AwsJsonDoubleOptions {
  keys: AwsKey[] | (() => AwsKey[]);
  /** The signing name the credential scope must carry (dynamodb, secretsmanager, ...). */
  service: string;
  handler?: (call: JsonCall) => unknown;
  now?: () => number;
  /** Plain HTTP on http://127.0.0.1:PORT, as an emulator (moto, LocalStack) serves: for clients given an endpoint. */
  plain?: boolean;
}

/** Thrown by a handler: the JSON error AWS answers with (ResourceNotFoundException, ParameterNotFound, ...). */
export class AwsJsonError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export interface AwsJsonDouble {
  port: number;
  /** https://dynamodb.example.test:PORT (resolve to 127.0.0.1 through proxy.hosts or a lookup). */
  url: string;
  calls: JsonCall[];
  refused: Refused[];
  close(): Promise<void>;
  /** Stops answering (closes the listener and every connection), as a service that went down. */
  pause(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
}

/** The JSON error types AWS JSON services use for signing failures. */
const ERROR_TYPES: Record<string, string> = {
  SignatureDoesNotMatch: 'InvalidSignatureException',
  InvalidAccessKeyId: 'UnrecognizedClientException',
  InvalidToken: 'UnrecognizedClientException',
};

export async function startAwsJsonDouble(options: AwsJsonDoubleOptions): Promise<AwsJsonDouble> {
  const calls: JsonCall[] = [];
  const refused: Refused[] = [];
  const handler = options.handler ?? (() => ({ TableNames: ['keyway-signed'] }));
  const reply = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() }).end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const verified = await verifySigV4(
      { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headersDistinct, body },
      { keys: options.keys, service: options.service, ...(options.now ? { now: options.now } : {}) },
    );
    if (!verified.ok) {
      refused.push(verified);
      const type = ERROR_TYPES[verified.code] ?? verified.code;
      return reply(res, verified.status === 403 ? 400 : verified.status, { __type: `com.amazon.coral.service#${type}`, message: verified.reason });
    }
    const target = req.headers['x-amz-target'];
    if (req.method !== 'POST' || typeof target !== 'string' || !target.includes('.'))
      return reply(res, 400, { __type: 'com.amazon.coral.service#UnknownOperationException', message: 'POST with X-Amz-Target: PREFIX.Operation expected' });
    let parsed: unknown;
    try {
      parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      return reply(res, 400, { __type: 'com.amazon.coral.service#SerializationException', message: 'the body is not JSON' });
    }
    const call: JsonCall = {
      target,
      headers: req.headers,
      body: parsed,
      accessKeyId: verified.accessKeyId,
      region: verified.region,
      service: verified.service,
      signedHeaders: verified.signedHeaders,
      payloadMode: verified.payloadMode,
      securityToken: verified.securityToken,
    };
    calls.push(call);
    try {
      reply(res, 200, handler(call));
    } catch (err) {
      if (!(err instanceof AwsJsonError)) throw err;
      reply(res, err.status, { __type: err.type, message: err.message });
    }
  };

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) reply(res, 500, { __type: 'com.amazon.coral.service#InternalFailure', message: error.message });
    });
  };
  const server = options.plain ? createPlainServer(serve) : createServer(mintTestLeaf(), serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    url: options.plain ? `http://127.0.0.1:${port}` : `https://${options.service}.example.test:${port}`,
    calls,
    refused,
    close,
    pause: close,
    resume: async () => {
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
  };
}
