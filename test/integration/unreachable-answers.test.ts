// A host keyway cannot reach (a name that does not resolve, a refused connection), answered in a
// form each client can read (issue 86: a contained `curl https://example.com` with no route got
// "wrong version number": keyway wrote its plain HTTP 502 into a socket where curl waited for a TLS
// ServerHello). Both ways in, for a host a grant covers (intercepted) and one none covers (tunnelled
// blind):
// - a CONNECT to a tunnelled host gets 502 upstream_unreachable on the CONNECT itself;
// - an intercepted host, either way in, gets the 502 with its JSON body inside keyway's TLS;
// - a redirected TLS connection to a tunnelled host gets a TLS alert (internal_error; access_denied
//   for a refused destination), exactly one record, never plain bytes; a redirected plain request
//   the 502 it can read.
// Here the redirect is curl's --connect-to and Node's tls.connect to the transparent listener, as in
// transparent.test.ts; contain-unreachable.test.ts runs the same through keyway run --contain.
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { duplexPair } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, rawConnect } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-unreachable`;
/** In a query string the agent sends: never in keyway's lines. */
const QUERY = `${CANARY}-query`;
/** A loopback address of this test's own where nothing listens: every connection to it is refused. */
const CLOSED = `127.${100 + (process.pid % 100)}.7.7`;
/** A private address, which keyway's egress rules refuse (only 127/8 is allowed here). */
const REFUSED_NETWORK = '10.255.7.7';

const INTERNAL_ERROR_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]);
const ACCESS_DENIED_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49]);

interface Listening {
  proxy: TestProxy;
  tlsPort: number;
  httpPort: number;
}

async function startWithTransparent(unmatched: 'tunnel' | 'deny'): Promise<Listening> {
  const tlsPort = await freePort();
  const httpPort = await freePort();
  const proxy = await startProxy({
    env: { API_TOKEN: TOKEN },
    config: {
      proxy: {
        hosts: { 'api.example.test': CLOSED, 'open.example.test': CLOSED, 'far.example.test': REFUSED_NETWORK },
        unmatched,
        transparent: { listen: `127.0.0.1:${tlsPort}`, http_listen: `127.0.0.1:${httpPort}` },
      },
      grants: { api: { type: 'bearer', domains: ['api.example.test', 'api.invalid'], secret: 'env:API_TOKEN' } },
    },
  });
  return { proxy, tlsPort, httpPort };
}

/**
 * A TLS handshake for `servername` on the transparent port: every byte keyway sent, as it came off
 * the wire, and the error Node's TLS made of it.
 */
async function handshake(port: number, servername: string): Promise<{ bytes: Buffer; error: string | undefined }> {
  const wire = netConnect({ host: '127.0.0.1', port });
  const [client, relay] = duplexPair();
  const received: Buffer[] = [];
  relay.on('data', (c: Buffer) => wire.write(c));
  wire.on('data', (c: Buffer) => {
    received.push(c);
    relay.write(c);
  });
  wire.on('end', () => relay.end());
  wire.on('error', () => relay.destroy());
  const tls = tlsConnect({ socket: client, servername });
  const error = await new Promise<string | undefined>((resolve) => {
    tls.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    tls.once('secureConnect', () => resolve(undefined));
  });
  tls.destroy();
  wire.destroy();
  return { bytes: Buffer.concat(received), error };
}

/** What came, for a failure's message: the first bytes as text (a plain answer reads as "HTTP/1.1 …"). */
const shown = (bytes: Buffer) => JSON.stringify(bytes.subarray(0, 60).toString('latin1'));

describe('a host keyway cannot reach: an answer each client can read, both ways in', () => {
  let tunnelling: Listening;
  const outputs: string[] = [];

  beforeAll(async () => {
    tunnelling = await startWithTransparent('tunnel');
  });
  afterAll(async () => {
    const { proxy } = tunnelling;
    for (const text of [
      proxy
        .auditLines()
        .map((l) => JSON.stringify(l))
        .join('\n'),
      ...outputs,
      ...proxy.logs,
    ]) {
      expect(findLeak(text, TOKEN)).toBeUndefined();
      expect(text).not.toContain(QUERY);
    }
    await proxy?.stop();
  });

  async function run(args: string[]) {
    const r = await curl(args, cleanEnv());
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  it('CONNECT to a host no grant covers: 502 upstream_unreachable on the CONNECT, naming why (refused, and a name that does not resolve)', async () => {
    const { proxy } = tunnelling;
    for (const [authority, why] of [
      ['open.example.test:443', 'connection refused'],
      ['open.invalid:443', 'cannot resolve'],
    ] as const) {
      const answer = await rawConnect(proxy.port, authority);
      expect(answer.status, authority).toBe(502);
      expect(answer.headers.get('x-keyway-error')).toBe('upstream_unreachable');
      expect(answer.headers.get('x-keyway-reason')).toContain(why);
      // curl reads it as what it is: a refused CONNECT, not a TLS error.
      const r = await curl(['-x', proxy.url, `https://${authority}/x?token=${QUERY}`], cleanEnv());
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(56);
      expect(r.stderr).toContain('CONNECT tunnel failed, response 502');
    }
  });

  it('a host a grant covers, either way in: the 502 and its JSON body inside TLS', async () => {
    const { proxy, tlsPort } = tunnelling;
    for (const host of ['api.example.test', 'api.invalid']) {
      const url = `https://${host}/v1/items?token=${QUERY}`;
      const viaConnect = await run(['-x', proxy.url, '--cacert', proxy.caPath, '-w', '\n%{http_code}', url]);
      const redirected = await run(['--connect-to', `${host}:443:127.0.0.1:${tlsPort}`, '--cacert', proxy.caPath, '-w', '\n%{http_code}', url]);
      for (const r of [viaConnect, redirected]) {
        expect(r.code, r.stderr).toBe(0);
        const [body, status] = r.stdout.split('\n');
        expect(status).toBe('502');
        expect(JSON.parse(body!)).toMatchObject({ error: { code: 'upstream_unreachable' } });
      }
    }
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['code'] === 'upstream_unreachable' && l['path'] === '/v1/items');
      return found.length >= 4 ? found : undefined;
    }, 'the four lines');
    expect(new Set(lines.map((l) => l['via'] ?? 'proxy'))).toEqual(new Set(['proxy', 'transparent']));
  });

  it('redirected TLS to a host no grant covers: one TLS alert (internal_error), never plain bytes; curl says so, not "wrong version number"', async () => {
    const { proxy, tlsPort } = tunnelling;
    for (const host of ['open.example.test', 'open.invalid']) {
      const { bytes, error } = await handshake(tlsPort, host);
      expect(bytes.equals(INTERNAL_ERROR_ALERT), `${host}: ${shown(bytes)}`).toBe(true);
      expect(error).toBe('ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR');
      const r = await run(['--connect-to', `${host}:443:127.0.0.1:${tlsPort}`, `https://${host}/x?token=${QUERY}`]);
      expect(r.code).toBe(35);
      expect(r.stderr).toContain('alert internal error');
      expect(r.stderr).not.toContain('wrong version number');
    }
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['via'] === 'transparent' && l['host'] === 'open.invalid' && l['code'] === 'upstream_unreachable'),
      'the audit line',
    );
    expect(line).toMatchObject({ decision: 'error', port: 443, message: 'cannot resolve open.invalid' });
  });

  it('redirected TLS to a destination the egress rules refuse: an access_denied alert', async () => {
    const { bytes, error } = await handshake(tunnelling.tlsPort, 'far.example.test');
    expect(bytes.equals(ACCESS_DENIED_ALERT), shown(bytes)).toBe(true);
    expect(error).toBe('ERR_SSL_TLSV1_ALERT_ACCESS_DENIED');
  });

  it('a redirected plain request to a host no grant covers: the 502 it can read, as HTTP', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: tunnelling.httpPort });
    // Not ended: a client that half-closes has its socket ended for it before the answer is written.
    socket.write('GET /x HTTP/1.1\r\nHost: open.example.test\r\nConnection: close\r\n\r\n');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await once(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer.toLowerCase()).toContain('x-keyway-error: upstream_unreachable');
  });

  it('redirected TLS refused before anything is dialled (unmatched: deny): an access_denied alert, not a bare close', async () => {
    const denying = await startWithTransparent('deny');
    try {
      const { bytes, error } = await handshake(denying.tlsPort, 'open.example.test');
      expect(bytes.equals(ACCESS_DENIED_ALERT), shown(bytes)).toBe(true);
      expect(error).toBe('ERR_SSL_TLSV1_ALERT_ACCESS_DENIED');
      const line = await waitFor(() => denying.proxy.auditLines().find((l) => l['code'] === 'host_not_allowed'), 'the refusal');
      expect(line).toMatchObject({ decision: 'deny', via: 'transparent', host: 'open.example.test' });
    } finally {
      await denying.proxy.stop();
    }
  });
});
