import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywayError } from '../../src/errors/index.ts';
import { LeafMinter, SecureContextCache, loadOrCreateCa } from '../../src/tls/index.ts';
import type { CertificateAuthority } from '../../src/tls/index.ts';
import { systemCertificates } from '../../src/tls/bundle.ts';

const OPENSSL = '/usr/bin/openssl';
const DAY_MS = 24 * 60 * 60 * 1000;

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-tls-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function openssl(...args: string[]): string {
  return execFileSync(OPENSSL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The hex of one key-identifier extension as `openssl x509 -ext` prints it. */
function keyIdExtension(certPath: string, ext: 'subjectKeyIdentifier' | 'authorityKeyIdentifier'): string {
  const text = openssl('x509', '-in', certPath, '-noout', '-ext', ext);
  const match = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text);
  if (!match?.[1]) throw new Error(`no ${ext} in ${certPath}:\n${text}`);
  return match[1];
}

async function expectCaInvalid(promise: Promise<unknown>, fileName: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeywayError);
  expect((err as KeywayError).code).toBe('ca_invalid');
  expect((err as KeywayError).message).toContain(fileName);
  expect((err as KeywayError).message).not.toContain('\n');
}

describe('loadOrCreateCa', () => {
  it('creates a CA with a 0600 key and a bundle of system roots plus the CA, last', async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);

    expect(ca.certPath).toBe(join(dir, 'ca.pem'));
    expect((await stat(ca.keyPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(ca.certPath, 'utf8')).toBe(ca.certPem);
    expect(await readFile(ca.keyPath, 'utf8')).toBe(ca.keyPem);

    const x509 = new X509Certificate(ca.certPem);
    expect(x509.ca).toBe(true);
    expect(x509.subject).toMatch(/^CN=keyway local CA [0-9a-f]{6}$/m);
    expect(x509.subject).toContain('O=keyway');
    expect(x509.fingerprint256).toBe(ca.fingerprint256);
    expect(x509.checkPrivateKey(ca.key)).toBe(true);
    expect(ca.notAfter.getTime() - Date.now()).toBeGreaterThan(3640 * DAY_MS);

    const text = openssl('x509', '-in', ca.certPath, '-noout', '-text');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(x509.issuer).toBe(x509.subject);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('sha256WithRSAEncryption');
    expect(text).toContain('Public-Key: (2048 bit)');
    // A self-signed root that OpenSSL's strict mode accepts as its own anchor.
    openssl('verify', '-x509_strict', '-CAfile', ca.certPath, ca.certPath);

    const bundle = await readFile(ca.bundlePath, 'utf8');
    const systemCert = systemCertificates()[0];
    expect(systemCert).toBeDefined();
    expect(bundle).toContain(systemCert!.trim());
    expect(bundle.trimEnd().endsWith(ca.certPem.trim())).toBe(true);
    expect(bundle.split(ca.certPem.trim()).length).toBe(2); // exactly once
  });

  it('loads the same CA on a second call without rewriting, and regenerates a missing bundle', async () => {
    const dir = await tempDir();
    const first = await loadOrCreateCa(dir);
    const before = await Promise.all([first.certPath, first.keyPath, first.bundlePath].map((p) => stat(p)));

    const second = await loadOrCreateCa(dir);
    expect(second.fingerprint256).toBe(first.fingerprint256);
    expect(second.keyPem).toBe(first.keyPem);
    const after = await Promise.all([second.certPath, second.keyPath, second.bundlePath].map((p) => stat(p)));
    after.forEach((s, i) => {
      expect(s.mtimeMs).toBe(before[i]?.mtimeMs);
      expect(s.ino).toBe(before[i]?.ino);
    });

    await unlink(first.bundlePath);
    const third = await loadOrCreateCa(dir);
    expect(third.fingerprint256).toBe(first.fingerprint256);
    expect(await readFile(third.bundlePath, 'utf8')).toContain(first.certPem.trim());
  });

  it('concurrent first calls agree on one CA and leave no temporary files', async () => {
    const dir = await tempDir();
    const [a, b] = await Promise.all([loadOrCreateCa(dir), loadOrCreateCa(dir)]);
    expect(a.fingerprint256).toBe(b.fingerprint256);
    expect((await readdir(dir)).sort()).toEqual(['bundle.pem', 'ca-key.pem', 'ca.pem']);
    expect((await stat(a.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('two installs get different CAs', async () => {
    const [a, b] = await Promise.all([loadOrCreateCa(await tempDir()), loadOrCreateCa(await tempDir())]);
    expect(a.fingerprint256).not.toBe(b.fingerprint256);
    expect(new X509Certificate(a.certPem).subject).not.toBe(new X509Certificate(b.certPem).subject);
  });

  it('refuses a corrupt ca.pem with ca_invalid and leaves the file untouched', async () => {
    const dir = await tempDir();
    await loadOrCreateCa(dir);
    const certPath = join(dir, 'ca.pem');
    const corrupt = '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n';
    await writeFile(certPath, corrupt);
    await expectCaInvalid(loadOrCreateCa(dir), 'ca.pem');
    expect(await readFile(certPath, 'utf8')).toBe(corrupt);
  });

  it('refuses a key that does not match the certificate, and a key without its certificate', async () => {
    const dirA = await tempDir();
    const dirB = await tempDir();
    await Promise.all([loadOrCreateCa(dirA), loadOrCreateCa(dirB)]);
    await copyFile(join(dirB, 'ca-key.pem'), join(dirA, 'ca-key.pem'));
    await expectCaInvalid(loadOrCreateCa(dirA), 'ca-key.pem');

    await unlink(join(dirB, 'ca.pem'));
    const keyBefore = await readFile(join(dirB, 'ca-key.pem'), 'utf8');
    await expectCaInvalid(loadOrCreateCa(dirB), 'ca.pem');
    expect(await readFile(join(dirB, 'ca-key.pem'), 'utf8')).toBe(keyBefore);
  });
});

describe('LeafMinter and SecureContextCache', () => {
  let dir: string;
  let ca: CertificateAuthority;
  let minter: LeafMinter;

  beforeAll(async () => {
    dir = await tempDir();
    ca = await loadOrCreateCa(dir);
    minter = new LeafMinter(ca);
  });

  const cases = [
    { host: 'api.example.test', cn: 'api.example.test', san: 'DNS:api.example.test', check: ['-verify_hostname', 'api.example.test'] },
    { host: '127.0.0.1', cn: '127.0.0.1', san: 'IP Address:127.0.0.1', check: ['-verify_ip', '127.0.0.1'] },
    { host: '::1', cn: '::1', san: 'IP Address:0:0:0:0:0:0:0:1', check: ['-verify_ip', '::1'] },
    { host: '::ffff:10.1.2.3', san: 'IP Address:0:0:0:0:0:FFFF:A01:203', cn: '::ffff:a01:203', check: ['-verify_ip', '::ffff:10.1.2.3'] },
  ];

  it.each(cases)('mints a leaf for $host that strict OpenSSL accepts as a server cert', async ({ host, cn, san, check }) => {
    const started = performance.now();
    const leaf = minter.mint(host);
    const elapsed = performance.now() - started;
    console.log(`minted a leaf for ${host} in ${elapsed.toFixed(2)} ms`); // sanity print only

    const leafPath = join(dir, `leaf-${host.replace(/[^a-z0-9]/gi, '_')}.pem`);
    await writeFile(leafPath, leaf.certPem);
    const out = openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', ca.certPath, ...check, leafPath);
    expect(out.trim()).toBe(`${leafPath}: OK`);

    const x509 = new X509Certificate(leaf.certPem);
    expect(x509.subjectAltName).toBe(san);
    expect(x509.subject).toBe(`CN=${cn}`); // IPv6 in canonical form
    expect(x509.ca).toBe(false);
    expect(x509.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(x509.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);

    const aki = keyIdExtension(leafPath, 'authorityKeyIdentifier');
    expect(aki).toBe(keyIdExtension(ca.certPath, 'subjectKeyIdentifier'));
    expect(aki).not.toBe(keyIdExtension(leafPath, 'subjectKeyIdentifier'));

    const notBefore = new Date(x509.validFrom).getTime();
    const notAfter = new Date(x509.validTo).getTime();
    expect(notAfter - notBefore).toBeLessThan(398 * DAY_MS);
    expect(notBefore).toBeLessThanOrEqual(Date.now() - 59 * 60 * 1000);

    const text = openssl('x509', '-in', leafPath, '-noout', '-text');
    expect(text).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication/);
    // An ECDSA P-256 leaf key: signing only (RFC 5480 forbids keyEncipherment for EC keys).
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
    expect(text).toContain('sha256WithRSAEncryption');
  });

  it('accepts hosts in any case, with a trailing dot or IPv6 brackets', () => {
    expect(new X509Certificate(minter.mint('API.Example.Test.').certPem).subjectAltName).toBe('DNS:api.example.test');
    expect(new X509Certificate(minter.mint('[::1]').certPem).subjectAltName).toBe('IP Address:0:0:0:0:0:0:0:1');
  });

  it('shares one leaf key across hosts and gives each leaf its own positive serial', () => {
    const a = minter.mint('a.example.test');
    const b = minter.mint('b.example.test');
    expect(a.keyPem).toBe(b.keyPem);
    const serialA = new X509Certificate(a.certPem).serialNumber;
    const serialB = new X509Certificate(b.certPem).serialNumber;
    expect(serialA).not.toBe(serialB);
    expect(Number.parseInt(serialA.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it('refuses hosts that are neither DNS names nor IP addresses', () => {
    for (const bad of ['bad host', 'a/b', '*.example.test', '', 'ex\u00e4mple.test']) {
      expect(() => minter.mint(bad)).toThrow(/not a DNS name or IP address/);
    }
  });

  it('serves minted contexts over a real TLS handshake chosen by SNI', async () => {
    const cache = new SecureContextCache(minter);
    const server = tls.createServer({ SNICallback: (name, cb) => cb(null, cache.get(name)) }, (socket) => {
      socket.end('hello');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const api = await handshake(port, 'api.example.test', ca.certPem);
      expect(api.authorized).toBe(true);
      expect(api.subjectaltname).toBe('DNS:api.example.test');
      expect(api.data).toBe('hello');

      const other = await handshake(port, 'other.example.test', ca.certPem);
      expect(other.authorized).toBe(true);
      expect(other.subjectaltname).toBe('DNS:other.example.test');
      expect(cache.size).toBe(2);
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  it('normalises hosts so one host has one cached context', () => {
    const cache = new SecureContextCache(minter);
    const ctx = cache.get('api.example.test');
    expect(cache.get('API.Example.TEST.')).toBe(ctx);
    expect(cache.get('[::1]')).toBe(cache.get('0:0::1'));
    expect(cache.size).toBe(2);
  });

  it('keeps at most `max` contexts', () => {
    const cache = new SecureContextCache(minter, { max: 2 });
    cache.get('one.example.test');
    cache.get('two.example.test');
    cache.get('three.example.test');
    expect(cache.size).toBe(2);
  });

  it('keeps few built contexts and rebuilds an evicted one from its kept leaf, without minting again', () => {
    let mints = 0;
    const counting = {
      mint: (host: string) => {
        mints++;
        return minter.mint(host);
      },
    } as LeafMinter;
    const cache = new SecureContextCache(counting, { max: 100, maxContexts: 2 });
    const first = cache.get('one.example.test');
    cache.get('two.example.test');
    cache.get('three.example.test');
    expect(cache.contexts).toBe(2);
    expect(cache.size).toBe(3);
    const again = cache.get('one.example.test');
    expect(again).not.toBe(first); // rebuilt: its context had been evicted
    expect(mints).toBe(3); // but from the kept leaf
  });
});

interface HandshakeResult {
  authorized: boolean;
  subjectaltname: string | undefined;
  data: string;
}

async function handshake(port: number, servername: string, ca: string): Promise<HandshakeResult> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca });
  try {
    await once(socket, 'secureConnect');
    const result = {
      authorized: socket.authorized,
      subjectaltname: socket.getPeerCertificate().subjectaltname,
    };
    let data = '';
    socket.setEncoding('utf8');
    for await (const chunk of socket) data += String(chunk);
    return { ...result, data };
  } finally {
    socket.destroy();
  }
}
