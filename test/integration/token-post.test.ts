import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  basicClientAuth,
  MAX_ANSWER_BYTES,
  postToken,
  printableErrorCode,
  safeOrigin,
  TokenPostFailure,
  type TokenPost,
} from '../../src/credentials/issuing/token-post.ts';
import { Agent, buildConnector } from '../../src/net/undici.ts';

// The one client every issuer call goes through (issuing/token-post.ts), against a scripted
// issuer on loopback: what it sends, that it hands back any answer for the caller to read, and
// that its failures (a timeout, an unreachable issuer, an answer too large) name the origin only.

// Planted in the URL, a header, the body and the answers: no failure may carry it.
const CANARY = 'canary-7f3a9c-secret';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}
let seen: Seen[] = [];
let server: Server;
let base: string;

function answer(req: IncomingMessage, res: ServerResponse, body: string): void {
  const path = req.url ?? '';
  if (path.startsWith('/silent')) return; // never answers: the timeout's to end
  if (path.startsWith('/stall')) {
    // Headers, then a body that never ends.
    res.writeHead(200, { 'content-type': 'application/json' }).write(`{"access_token":"${CANARY}`);
    return;
  }
  if (path.startsWith('/huge')) {
    // One byte over the cap, the canary in every chunk.
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = `${CANARY} `.repeat(1024);
    let left = MAX_ANSWER_BYTES + 1;
    while (left > 0) {
      const part = chunk.slice(0, Math.min(left, chunk.length));
      res.write(part);
      left -= part.length;
    }
    res.end();
    return;
  }
  if (path.startsWith('/exactly-the-cap')) {
    res.writeHead(200).end('x'.repeat(MAX_ANSWER_BYTES));
    return;
  }
  if (path.startsWith('/refused')) {
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client', error_description: CANARY }));
    return;
  }
  if (path.startsWith('/xml')) {
    res.writeHead(200, { 'content-type': 'text/xml' }).end('<AssumeRoleResponse><Credentials/></AssumeRoleResponse>');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'dpop-nonce': 'n-1' }).end(JSON.stringify({ echoed: body.length }));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      answer(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

const secretPost = (path: string): TokenPost => ({
  url: `${base}${path}?key=${CANARY}`,
  headers: { authorization: basicClientAuth('client', CANARY), accept: 'application/json' },
  body: { form: new URLSearchParams({ grant_type: 'client_credentials', client_secret: CANARY }) },
});

/** The failure postToken hands the caller's failedAs, which returns it to be thrown as is. */
async function failureOf(post: TokenPost, timeoutMs = 2_000): Promise<TokenPostFailure> {
  let given: TokenPostFailure | undefined;
  const thrown = await postToken(post, { timeoutMs }, (failure) => {
    given = failure;
    return new Error('the caller words it');
  }).catch((err: unknown) => err);
  expect((thrown as Error).message).toBe('the caller words it');
  expect(given).toBeInstanceOf(TokenPostFailure);
  return given!;
}

/** A failure as a log line or an error answer could show it: message, fields, cause and stack. */
const everything = (failure: TokenPostFailure): string => `${inspect(failure, { depth: 6 })} ${JSON.stringify(failure)}`;

describe('postToken: the request', () => {
  it('posts a form with its content-type and the caller headers, and hands back status, headers and text', async () => {
    seen = [];
    const got = await postToken(
      { url: `${base}/token`, headers: { accept: 'application/json', dpop: 'proof' }, body: { form: new URLSearchParams({ grant_type: 'x', scope: 'a b' }) } },
      { timeoutMs: 2_000 },
      () => new Error('unexpected'),
    );
    expect(got.status).toBe(200);
    expect(got.headers['dpop-nonce']).toBe('n-1');
    expect(JSON.parse(got.text)).toEqual({ echoed: 'grant_type=x&scope=a+b'.length });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      path: '/token',
      body: 'grant_type=x&scope=a+b',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop: 'proof' },
    });
  });

  it('posts JSON as application/json; a content-type the caller gives wins (STS signs its own)', async () => {
    seen = [];
    await postToken({ url: `${base}/json`, headers: {}, body: { json: { repositories: ['r'] } } }, { timeoutMs: 2_000 }, () => new Error('unexpected'));
    await postToken(
      {
        url: `${base}/sts`,
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: { form: new URLSearchParams({ Action: 'AssumeRole' }) },
      },
      { timeoutMs: 2_000 },
      () => new Error('unexpected'),
    );
    await postToken({ url: `${base}/installations`, method: 'GET', headers: {} }, { timeoutMs: 2_000 }, () => new Error('unexpected'));
    expect(seen.map((s) => [s.method, s.headers['content-type'], s.body])).toEqual([
      ['POST', 'application/json', '{"repositories":["r"]}'],
      ['POST', 'application/x-www-form-urlencoded; charset=utf-8', 'Action=AssumeRole'],
      ['GET', undefined, ''],
    ]);
  });

  it('goes through the dispatcher it is given (the egress)', async () => {
    let connections = 0;
    const connect = buildConnector({});
    const egress = new Agent({
      connect: (options, callback) => {
        connections += 1;
        return connect(options, callback);
      },
    });
    try {
      await postToken({ url: `${base}/token`, headers: {} }, { timeoutMs: 2_000, dispatcher: egress }, () => new Error('unexpected'));
      expect(connections).toBe(1);
    } finally {
      await egress.close();
    }
  });
});

describe('postToken: any answer is the caller to read', () => {
  it('a refusal (4xx) comes back with its status and body, not as a failure', async () => {
    const got = await postToken(secretPost('/refused'), { timeoutMs: 2_000 }, () => new Error('unexpected'));
    expect(got.status).toBe(400);
    expect(JSON.parse(got.text)).toMatchObject({ error: 'invalid_client' });
  });

  it('an answer that is not JSON comes back as text (STS answers XML)', async () => {
    const got = await postToken({ url: `${base}/xml`, headers: {} }, { timeoutMs: 2_000 }, () => new Error('unexpected'));
    expect(got).toMatchObject({ status: 200, text: '<AssumeRoleResponse><Credentials/></AssumeRoleResponse>' });
  });

  it('an answer of exactly 64 KiB is read whole', async () => {
    const got = await postToken({ url: `${base}/exactly-the-cap`, headers: {} }, { timeoutMs: 2_000 }, () => new Error('unexpected'));
    expect(got.text.length).toBe(MAX_ANSWER_BYTES);
  });
});

describe('postToken: failures name the origin, nothing sent or answered', () => {
  it('an answer over 64 KiB is cut off: oversize', async () => {
    const failure = await failureOf(secretPost('/huge'));
    expect(failure).toMatchObject({ kind: 'oversize', where: base, message: `${base} answered with more than 64 KiB` });
    expect(everything(failure)).not.toContain(CANARY);
  });

  it('an issuer that does not answer, or stops halfway: the call ends at the timeout', async () => {
    for (const path of ['/silent', '/stall']) {
      const started = Date.now();
      const failure = await failureOf(secretPost(path), 300);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(failure).toMatchObject({ kind: 'timeout', where: base, message: `${base} did not answer within 300 ms` });
      expect(everything(failure)).not.toContain(CANARY);
    }
  });

  it('an issuer nobody listens at: unreachable, with the code', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const failure = await failureOf({ ...secretPost(''), url: `http://127.0.0.1:${port}/token/${CANARY}?key=${CANARY}` });
    expect(failure).toMatchObject({ kind: 'unreachable', code: 'ECONNREFUSED', message: `http://127.0.0.1:${port} could not be reached (ECONNREFUSED)` });
    expect(everything(failure)).not.toContain(CANARY);
  });

  it('a URL that is not one: unreachable, named "(invalid URL)"', async () => {
    const failure = await failureOf({ ...secretPost(''), url: `not a url ${CANARY}` });
    expect(failure).toMatchObject({ kind: 'unreachable', where: '(invalid URL)' });
    expect(everything(failure)).not.toContain(CANARY);
  });
});

describe('the parts every issuer call shares', () => {
  it('Basic client authentication form-encodes id and secret before base64 (RFC 6749 2.3.1)', () => {
    const [, encoded] = basicClientAuth('id:with colon', 'sé/cret').split(' ');
    expect(Buffer.from(encoded!, 'base64').toString()).toBe('id%3Awith%20colon:s%C3%A9%2Fcret');
  });

  it('an error code keeps its word characters, 64 at most', () => {
    expect(printableErrorCode('invalid_grant')).toBe('invalid_grant');
    expect(printableErrorCode('bad grant: "see https://x/?t=1"')).toBe('badgrantseehttpsxt1');
    expect(printableErrorCode('x'.repeat(100))).toHaveLength(64);
  });

  it('safeOrigin keeps scheme, host and port, never a path or a query', () => {
    expect(safeOrigin(`https://login.example:8443/tenant/${CANARY}/token?key=${CANARY}`)).toBe('https://login.example:8443');
    expect(safeOrigin('nope')).toBe('(invalid URL)');
  });
});
