// Minted credentials (issue 25): client certificates to the upstream. Loopback HTTPS servers that
// ask for a client certificate from their own CA (made here): a strict one refuses the handshake
// without one or with another CA's; an observing one answers every request with what it saw (the
// certificate's CN, the Authorization header, the connection's port) so a test can tell which
// requests came with the certificate. Driven through keyway by curl and Node's fetch.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect, type connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { openTunnel } from '../../../../test/helpers/raw-http.ts';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientCert, issueClientCert, makeTestCa, type TestCa } from '../../../../test/helpers/client-ca.ts';
import { adminClient } from '../../../../test/helpers/admin-api.ts';
import { curl, freePort } from '../../../../test/helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';

const DAY = 24 * 3_600_000;
const PASSPHRASE = `${CANARY}-key-passphrase`;
const TOKEN = `${CANARY}-bearer-token`;

interface Seen {
  host: string;
  cn: string | null;
  authorization: string | null;
  port: number;
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Answers every request with what it saw, certificate or not (requestCert without rejecting). */
function observingServer(ca: TestCa, seen: Seen[]): Server {
  return createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key, ca: ca.certPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const record: Seen = {
      host: String(req.headers.host).split(':')[0]!,
      cn: socket.authorized && peer?.subject ? String(peer.subject.CN) : null,
      authorization: req.headers.authorization ?? null,
      port: socket.remotePort ?? 0,
    };
    seen.push(record);
    res.writeHead(record.cn ? 200 : 403, { 'content-type': 'application/json' }).end(JSON.stringify(record));
  });
}

/** Refuses the handshake itself without a certificate from `ca` (a TLS alert). */
function strictServer(ca: TestCa): Server {
  return createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cn: peer.subject.CN }));
  });
}

/** The upstream's certificate and key as files, for openssl s_server. */
function serverFiles(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server-key.pem');
  writeFileSync(cert, TLS_FIXTURES.cert);
  writeFileSync(key, TLS_FIXTURES.key, { mode: 0o600 });
  return { cert, key };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A slice of a PEM's base64 body: enough of the key to recognise it anywhere. */
const pemSlice = (pem: string) => pem.split('\n')[2]!;

describe('mtls: keyway presents a grant’s client certificate to the upstream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-mtls-'));
  const seen: Seen[] = [];
  const outputs: string[] = [];
  let ca: TestCa;
  let good: ClientCert;
  let forCarried: ClientCert;
  let foreign: ClientCert;
  let observing: Server;
  let strict: Server;
  let port = 0;
  let strictPort = 0;
  let proxy: TestProxy;
  let secrets: string[] = [];

  const viaKeyway = (url: string, grant: string) =>
    curl(['--cacert', proxy.caPath, '-x', proxy.url, '-H', `X-Keyway-Grant: ${grant}`, '-w', '\\n%{http_code}', url], cleanEnv());

  beforeAll(async () => {
    ca = makeTestCa('keyway test client CA');
    const other = makeTestCa('another CA');
    good = issueClientCert(ca, 'agent-mtls');
    forCarried = issueClientCert(ca, 'carried-beside-token');
    foreign = issueClientCert(other, 'from-another-ca');
    const expired = issueClientCert(ca, 'expired', { notBefore: Date.now() - 30 * DAY, notAfter: Date.now() - DAY });
    const soon = issueClientCert(ca, 'expires-soon', { notAfter: Date.now() + 10 * DAY });
    secrets = [PASSPHRASE, TOKEN, ...[good, forCarried, foreign, expired].flatMap((c) => [pemSlice(c.keyPem), pemSlice(c.encryptedKeyPem(PASSPHRASE))])];
    observing = observingServer(ca, seen);
    // WebSocket upgrades on the same server: the first message says which certificate came.
    new WebSocketServer({ server: observing }).on('connection', (ws, req) => {
      const socket = req.socket as TLSSocket;
      ws.send(JSON.stringify({ cn: socket.authorized ? String(socket.getPeerCertificate().subject.CN) : null }));
    });
    strict = strictServer(ca);
    port = await listen(observing);
    strictPort = await listen(strict);
    writeFileSync(join(dir, 'good.pem'), good.certPem);
    writeFileSync(join(dir, 'good-key.pem'), good.encryptedKeyPem(PASSPHRASE), { mode: 0o600 });
    writeFileSync(join(dir, 'carried.pem'), forCarried.certPem);
    writeFileSync(join(dir, 'carried-key.pem'), forCarried.keyPem, { mode: 0o600 });
    // A legacy-encrypted bundle (RC2/3DES, as older tools export), which Node's own pfx support refuses.
    execFileSync('openssl', [
      'pkcs12',
      '-export',
      '-legacy',
      '-in',
      join(dir, 'carried.pem'),
      '-inkey',
      join(dir, 'carried-key.pem'),
      '-out',
      join(dir, 'carried.p12'),
      '-passout',
      `pass:${PASSPHRASE}`,
    ]);
    writeFileSync(join(dir, 'corrupt.p12'), Buffer.from('not a pkcs12 bundle at all'));
    proxy = await startProxy({
      env: { CLIENT_KEY_PASSPHRASE: PASSPHRASE },
      config: {
        grants: {
          // From the config file: PEM files and the passphrase by reference.
          fromconfig: {
            type: 'mtls',
            domains: ['tunnel.example.test'],
            client_certificate: {
              certificate: `file:${join(dir, 'good.pem')}`,
              private_key: `file:${join(dir, 'good-key.pem')}`,
              passphrase: 'env:CLIENT_KEY_PASSPHRASE',
            },
          },
        },
      },
      grants: [
        { id: 'certa', type: 'mtls', domains: ['api.example.test'] },
        { id: 'tok', type: 'bearer', domains: ['api.example.test'], secret: TOKEN },
        { id: 'carried', type: 'bearer', domains: ['slow.example.test'], secret: TOKEN },
        { id: 'foreign', type: 'mtls', domains: ['other.example.test'], secret: { certificate: foreign.certPem, privateKey: foreign.keyPem } },
        { id: 'old', type: 'mtls', domains: ['bad.example.test'], secret: { certificate: expired.certPem, privateKey: expired.keyPem } },
        { id: 'soon', type: 'mtls', domains: ['plain.example.test'], secret: { certificate: soon.certPem, privateKey: soon.keyPem } },
      ],
    });
  });

  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const secret of secrets) expect(findLeak(text, secret), 'a key or passphrase in an output').toBeUndefined();
    await proxy?.stop();
    observing?.close();
    strict?.close();
  });

  it('the test servers check the certificate: the strict one refuses none and another CA’s, takes its own CA’s', async () => {
    const url = `https://api.example.test:${strictPort}/`;
    const base = ['--cacert', TLS_FIXTURES.caPath, '--resolve', `api.example.test:${strictPort}:127.0.0.1`];
    expect((await curl([...base, url], cleanEnv())).code).not.toBe(0);
    const wrong = await curl([...base, '--cert', join(dir, 'carried.pem'), '--key', join(dir, 'carried-key.pem'), url], cleanEnv());
    expect(wrong.code).toBe(0); // carried is from the right CA: accepted
    writeFileSync(join(dir, 'foreign.pem'), foreign.certPem);
    writeFileSync(join(dir, 'foreign-key.pem'), foreign.keyPem, { mode: 0o600 });
    const refused = await curl([...base, '--cert', join(dir, 'foreign.pem'), '--key', join(dir, 'foreign-key.pem'), url], cleanEnv());
    expect(refused.code).not.toBe(0);
  });

  it('secrets set refuses a wrong passphrase, a corrupt bundle and a key of another certificate, without quoting them', async () => {
    // Before any certificate is set: grant_no_secret, naming the command that sets one.
    const none = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-i', '-H', 'X-Keyway-Grant: certa', `https://api.example.test:${port}/`], cleanEnv());
    outputs.push(none.stdout, none.stderr);
    expect(none.stdout).toMatch(/HTTP\/[0-9.]+ 401/);
    expect(none.stdout).toContain('keyway secrets set certa --client-certificate CERT.pem --client-key KEY.pem');
    const wrong = await proxy.cli(
      ['secrets', 'set', 'certa', '--client-certificate', join(dir, 'good.pem'), '--client-key', join(dir, 'good-key.pem'), '--stdin'],
      'not-it\n',
    );
    outputs.push(wrong.stdout, wrong.stderr);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/wrong passphrase/);
    const corrupt = await proxy.cli(['secrets', 'set', 'carried', '--pkcs12', join(dir, 'corrupt.p12'), '--stdin'], `${PASSPHRASE}\n`);
    outputs.push(corrupt.stdout, corrupt.stderr);
    expect(corrupt.code).not.toBe(0);
    expect(corrupt.stderr).toMatch(/PKCS#12 bundle cannot be read/);
    const badPass = await proxy.cli(['secrets', 'set', 'carried', '--pkcs12', join(dir, 'carried.p12'), '--stdin'], 'nope\n');
    outputs.push(badPass.stdout, badPass.stderr);
    expect(badPass.stderr).toMatch(/PKCS#12 bundle does not open: wrong passphrase/);
    const mismatch = await proxy.cli(
      ['secrets', 'set', 'certa', '--client-certificate', join(dir, 'carried.pem'), '--client-key', join(dir, 'good-key.pem'), '--stdin'],
      PASSPHRASE,
    );
    outputs.push(mismatch.stdout, mismatch.stderr);
    expect(mismatch.stderr).toMatch(/does not belong to the certificate/);
  });

  it('an mtls grant presents its certificate (curl, Node fetch); a second grant on the same host never gets that connection, nor the reverse', async () => {
    const set = await proxy.cli(
      ['secrets', 'set', 'certa', '--client-certificate', join(dir, 'good.pem'), '--client-key', join(dir, 'good-key.pem'), '--stdin'],
      `${PASSPHRASE}\n`,
    );
    outputs.push(set.stdout, set.stderr);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/client certificate set for grant certa \(expires 20/);
    const url = `https://api.example.test:${port}/who`;
    // Wait for the running proxy to see the store change.
    let first = await viaKeyway(url, 'certa');
    for (let i = 0; i < 50 && !first.stdout.endsWith('\n200'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      first = await viaKeyway(url, 'certa');
    }
    outputs.push(first.stdout, first.stderr);
    expect(first.stdout).toMatch(/\n200$/);
    // Interleaved, within keep-alive: each grant's requests keep to their own connections.
    const order = ['tok', 'certa', 'tok', 'certa', 'tok'];
    for (const grant of order) {
      const r = await viaKeyway(url, grant);
      outputs.push(r.stdout, r.stderr);
      expect(r.stdout).toMatch(grant === 'certa' ? /\n200$/ : /\n403$/);
    }
    const onHost = seen.filter((s) => s.host === 'api.example.test');
    const withCert = onHost.filter((s) => s.cn === 'agent-mtls');
    const withToken = onHost.filter((s) => s.authorization === `Bearer ${TOKEN}`);
    expect(withCert.length).toBeGreaterThanOrEqual(3);
    expect(withToken).toHaveLength(3);
    // The bearer grant's requests never came with the certificate, the mTLS grant's never with the token.
    expect(withToken.every((s) => s.cn === null)).toBe(true);
    expect(withCert.every((s) => s.authorization === null)).toBe(true);
    // And they are on different connections (keyway's upstream ports), though each pool is kept alive.
    const certPorts = new Set(withCert.map((s) => s.port));
    const tokenPorts = new Set(withToken.map((s) => s.port));
    expect([...certPorts].some((p) => tokenPorts.has(p))).toBe(false);
    expect(tokenPorts.size).toBe(1);

    // Node's own fetch through keyway, choosing the grant by header.
    const script = `fetch(${JSON.stringify(url)}, { headers: { 'x-keyway-grant': 'certa' }, signal: AbortSignal.timeout(10000) })
      .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))
      .catch((e) => { console.error('fetch failed:', e?.cause?.code ?? e?.message); process.exit(1); });`;
    const node = await runProcess(
      process.execPath,
      ['-e', script],
      cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: proxy.caPath }),
      undefined,
      15_000,
    );
    outputs.push(node.stdout, node.stderr);
    const answer = JSON.parse(node.stdout) as { status: number; body: string };
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ cn: 'agent-mtls', authorization: null });
  });

  it('a WebSocket upgrade with the mTLS grant presents the certificate; one with the bearer grant does not', async () => {
    const authority = `api.example.test:${port}`;
    const keywayCa = readFileSync(proxy.caPath, 'utf8');
    const firstMessage = async (grant: string) => {
      const tunnel = await openTunnel(proxy.port, authority);
      const ws = new WebSocket(`wss://${authority}/ws`, {
        headers: { 'x-keyway-grant': grant },
        createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa })) as unknown as typeof netConnect,
      });
      try {
        const [data] = (await Promise.race([once(ws, 'message'), once(ws, 'error').then(([err]) => Promise.reject(err as Error))])) as [Buffer];
        outputs.push(data.toString());
        return JSON.parse(data.toString()) as { cn: string | null };
      } finally {
        ws.terminate();
      }
    };
    expect(await firstMessage('certa')).toEqual({ cn: 'agent-mtls' });
    expect(await firstMessage('tok')).toEqual({ cn: null });
  });

  it('a config grant with client_certificate: (PEM files, passphrase from the environment) presents it', async () => {
    const r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-w', '\\n%{http_code}', `https://tunnel.example.test:${port}/`], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/\n200$/);
    expect(seen.at(-1)).toMatchObject({ host: 'tunnel.example.test', cn: 'agent-mtls' });
  });

  it('a certificate carried beside a bearer token (a PKCS#12 bundle): both go, the token in its header, the certificate on the connection', async () => {
    const set = await proxy.cli(['secrets', 'set', 'carried', '--pkcs12', join(dir, 'carried.p12'), '--stdin'], `${PASSPHRASE}\n`);
    outputs.push(set.stdout, set.stderr);
    expect(set.code, set.stderr).toBe(0);
    const url = `https://slow.example.test:${port}/`;
    let r = await viaKeyway(url, 'carried');
    for (let i = 0; i < 50 && !r.stdout.endsWith('\n200'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await viaKeyway(url, 'carried');
    }
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/\n200$/);
    // What the upstream saw (the agent's copy of the echo has the token redacted by the leak guard).
    expect(seen.at(-1)).toMatchObject({ host: 'slow.example.test', cn: 'carried-beside-token', authorization: `Bearer ${TOKEN}` });
    // Setting the token again leaves the certificate in place.
    const again = await proxy.cli(['secrets', 'set', 'carried', '--stdin'], TOKEN);
    outputs.push(again.stdout, again.stderr);
    const shown = await proxy.cli(['grants', 'show', 'carried', '--json']);
    outputs.push(shown.stdout);
    expect(JSON.parse(shown.stdout).client_certificate).toMatchObject({ subject: 'CN=carried-beside-token' });
    // Taken off again: the token goes alone.
    const removed = await proxy.cli(['secrets', 'set', 'carried', '--remove-client-certificate']);
    outputs.push(removed.stdout, removed.stderr);
    expect(removed.code, removed.stderr).toBe(0);
    let after = await viaKeyway(url, 'carried');
    for (let i = 0; i < 50 && !after.stdout.endsWith('\n403'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      after = await viaKeyway(url, 'carried');
    }
    outputs.push(after.stdout, after.stderr);
    expect(seen.at(-1)).toMatchObject({ host: 'slow.example.test', cn: null, authorization: `Bearer ${TOKEN}` });
  });

  it('an upstream refusing the certificate is 502 upstream_unreachable saying so: Node closing, OpenSSL failing the handshake', async () => {
    const r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-i', `https://other.example.test:${strictPort}/`], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/HTTP\/[0-9.]+ 502/);
    expect(r.stdout).toMatch(/x-keyway-error: upstream_unreachable/i);
    expect(r.stdout).toMatch(/refused the client certificate of grant \\?"foreign\\?"/);
    // openssl s_server -Verify: the handshake itself fails with a TLS alert (unknown CA).
    writeFileSync(join(dir, 'client-ca.pem'), ca.certPem);
    const opensslPort = await freePort();
    const server: ChildProcess = spawn(
      'openssl',
      [
        's_server',
        '-accept',
        `127.0.0.1:${opensslPort}`,
        '-cert',
        serverFiles(dir).cert,
        '-key',
        join(dir, 'server-key.pem'),
        '-CAfile',
        join(dir, 'client-ca.pem'),
        '-Verify',
        '1',
        '-verify_return_error',
        '-www',
        '-quiet',
      ],
      { stdio: 'ignore' },
    );
    try {
      for (let i = 0; i < 50 && !(await canConnect(opensslPort)); i++) await new Promise((res) => setTimeout(res, 100));
      const viaOpenssl = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-i', `https://other.example.test:${opensslPort}/`], cleanEnv());
      outputs.push(viaOpenssl.stdout, viaOpenssl.stderr);
      expect(viaOpenssl.stdout).toMatch(/HTTP\/[0-9.]+ 502/);
      // Under TLS 1.3 the alert comes after the client's side of the handshake; undici reports the close.
      expect(viaOpenssl.stdout).toMatch(/refused the client certificate of grant \\?"foreign\\?"/);
    } finally {
      server.kill();
    }
  });

  it('an expired certificate is refused before connecting; one expiring within 14 days is flagged in listings', async () => {
    const before = seen.length;
    const r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-i', `https://bad.example.test:${port}/`], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/HTTP\/[0-9.]+ 502/);
    expect(r.stdout).toMatch(/client certificate expired at/);
    expect(seen.length).toBe(before);
    const list = await proxy.cli(['grants', 'list', '--json']);
    outputs.push(list.stdout, list.stderr);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    const row = (id: string) => rows.find((g) => g['id'] === id)!;
    expect(row('old')).toMatchObject({ display_status: 'needs_reconnect', status_detail: expect.stringMatching(/client certificate expired at/) });
    expect(row('soon')).toMatchObject({ display_status: 'expiring', status_detail: expect.stringMatching(/client certificate expires at/) });
    expect(row('certa')['client_certificate_expires_at']).toMatch(/^20/);
    const table = await proxy.cli(['grants', 'list']);
    outputs.push(table.stdout, table.stderr);
    expect(table.stderr).toMatch(/warning: grant soon: client certificate expires at/);
    // The proxy said so in its log at start.
    expect(proxy.logs.join('')).toMatch(/grant soon: client certificate expires at/);
    expect(proxy.logs.join('')).toMatch(/grant old: client certificate expired at/);
    // The admin API lists the same, and takes an mtls secret as JSON: a PKCS#12 bundle here.
    const admin = adminClient(proxy);
    const listed = await admin.call('GET', '/api/grants');
    outputs.push(listed.text);
    expect(listed.text).toContain('client_certificate_expires_at');
    const bundle = readFileSync(join(dir, 'carried.p12')).toString('base64');
    const wrong = await admin.call('PUT', '/api/grants/soon/secret', { secret: { pkcs12: bundle, passphrase: 'nope' } });
    outputs.push(wrong.text);
    expect(wrong.status).toBe(400);
    expect(wrong.text).toMatch(/wrong passphrase/);
    const put = await admin.call('PUT', '/api/grants/soon/secret', { secret: { pkcs12: bundle, passphrase: PASSPHRASE } });
    outputs.push(put.text);
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ grant: { client_certificate: { subject: 'CN=carried-beside-token' }, display_status: 'active' } });
  });
});
