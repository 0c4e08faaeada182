// A loopback STS that answers AssumeRole (Query protocol: a signed form POST) the way AWS STS does,
// after checking the request's Signature Version 4 against the real long-term key with
// sigv4-verifier.ts. It issues fresh temporary credentials per call with an Expiration the test
// controls, and counts calls: keyway's assume_role must call it once per expiry (single flight),
// refresh before Expiration, and treat a failure here as token_refresh_failed. Issued credentials
// can be handed to the S3 front (`keys: () => [...sts.issued]`), which then insists on the
// matching x-amz-security-token.
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type AwsKey, type Refused, verifySigV4 } from './sigv4-verifier.ts';
import { mintTestLeaf } from './test-leaf.ts';

export interface StsDoubleOptions {
  /** The long-term keys allowed to call AssumeRole. */
  keys: AwsKey[];
  /** Lifetime of issued credentials in seconds (default: the request's DurationSeconds, else 3600). */
  lifetimeSeconds?: number;
  now?: () => number;
}

export interface AssumeRoleCall {
  roleArn: string;
  roleSessionName: string;
  durationSeconds?: number;
  externalId?: string;
  accessKeyId: string;
  region: string;
  signedHeaders: string[];
  at: number;
}

export interface IssuedCredentials extends Required<AwsKey> {
  expiration: Date;
  roleArn: string;
}

export interface StsFailure {
  status: number;
  code: string;
  message: string;
}

export interface StsDouble {
  port: number;
  /** https://sts.example.test:PORT (resolve to 127.0.0.1 through keyway's proxy.hosts or a lookup). */
  url: string;
  /** Every AssumeRole that passed the signature check, answered or failed on purpose. */
  calls: AssumeRoleCall[];
  /** Credentials handed out, in order. */
  issued: IssuedCredentials[];
  /** Requests refused for their signature (or shape). */
  refused: Refused[];
  setLifetime(seconds: number | undefined): void;
  /** Every call fails with this until cleared (undefined). */
  setFailure(failure: StsFailure | undefined): void;
  /** Hold each answer this long: lets concurrent callers pile up on one refresh. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

const xmlEscape = (s: string) => s.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`);

function errorXml(code: string, message: string): string {
  return `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
}

function assumeRoleXml(call: AssumeRoleCall, creds: IssuedCredentials): string {
  const roleName = call.roleArn.split('/').pop() ?? 'role';
  const account = /^arn:aws:iam::(\d{12}):/.exec(call.roleArn)?.[1] ?? '123456789012';
  return [
    `<AssumeRoleResponse xmlns="${NS}"><AssumeRoleResult>`,
    `<AssumedRoleUser><AssumedRoleId>AROAKEYWAYTESTROLE:${xmlEscape(call.roleSessionName)}</AssumedRoleId>`,
    `<Arn>arn:aws:sts::${account}:assumed-role/${xmlEscape(roleName)}/${xmlEscape(call.roleSessionName)}</Arn></AssumedRoleUser>`,
    `<Credentials><AccessKeyId>${creds.accessKeyId}</AccessKeyId><SecretAccessKey>${creds.secretAccessKey}</SecretAccessKey>`,
    `<SessionToken>${creds.sessionToken}</SessionToken><Expiration>${creds.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration></Credentials>`,
    `</AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
  ].join('');
}

export async function startStsDouble(options: StsDoubleOptions): Promise<StsDouble> {
  const now = options.now ?? Date.now;
  const calls: AssumeRoleCall[] = [];
  const issued: IssuedCredentials[] = [];
  const refused: Refused[] = [];
  let lifetime = options.lifetimeSeconds;
  let failure: StsFailure | undefined;
  let delay = 0;

  const answer = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() }).end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const verified = await verifySigV4(
      { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headersDistinct, body },
      { keys: options.keys, service: 'sts', now },
    );
    if (!verified.ok) {
      refused.push(verified);
      return answer(res, verified.status, errorXml(verified.code, verified.reason));
    }
    const form = new URLSearchParams(req.method === 'POST' ? body.toString('utf8') : (req.url ?? '').split('?')[1]);
    if (form.get('Action') !== 'AssumeRole')
      return answer(res, 400, errorXml('InvalidAction', `this double answers AssumeRole only, not ${form.get('Action')}`));
    const roleArn = form.get('RoleArn') ?? '';
    const roleSessionName = form.get('RoleSessionName') ?? '';
    if (!/^arn:aws:iam::\d{12}:role\/.+/.test(roleArn)) return answer(res, 400, errorXml('ValidationError', `RoleArn '${roleArn}' is not a role ARN`));
    if (!/^[\w+=,.@-]{2,64}$/.test(roleSessionName)) return answer(res, 400, errorXml('ValidationError', 'RoleSessionName must be 2 to 64 of [\\w+=,.@-]'));
    const duration = form.get('DurationSeconds');
    const externalId = form.get('ExternalId');
    const call: AssumeRoleCall = {
      roleArn,
      roleSessionName,
      ...(duration !== null ? { durationSeconds: Number(duration) } : {}),
      ...(externalId !== null ? { externalId } : {}),
      accessKeyId: verified.accessKeyId,
      region: verified.region,
      signedHeaders: verified.signedHeaders,
      at: now(),
    };
    calls.push(call);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (failure) return answer(res, failure.status, errorXml(failure.code, failure.message));
    const seconds = lifetime ?? call.durationSeconds ?? 3600;
    const creds: IssuedCredentials = {
      accessKeyId: `ASIAKEYWAY${String(issued.length + 1).padStart(10, '0')}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `kw-sts-${randomBytes(48).toString('base64url')}`,
      expiration: new Date(now() + seconds * 1000),
      roleArn,
    };
    issued.push(creds);
    answer(res, 200, assumeRoleXml(call, creds));
  };

  const { cert, key } = mintTestLeaf();
  const server = createServer({ cert, key }, (req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) answer(res, 500, errorXml('InternalFailure', error.message));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://sts.example.test:${port}`,
    calls,
    issued,
    refused,
    setLifetime: (seconds) => {
      lifetime = seconds;
    },
    setFailure: (f) => {
      failure = f;
    },
    setDelay: (ms) => {
      delay = ms;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
