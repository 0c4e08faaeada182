// The DER pieces leaf certificates are built from (src/tls/der.ts): checked against what OpenSSL
// (through node:crypto) reads back, and against hand-encoded bytes from X.690's rules.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { certificateSubject, extentAt, oid, positiveInteger, seq, subjectKeyIdentifierOf, time, tlv, utf8 } from '../../src/tls/der.ts';
import { LeafMinter } from '../../src/tls/leaf.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';

const hex = (b: Buffer) => b.toString('hex');

describe('DER writer', () => {
  it('writes short and long lengths', () => {
    expect(hex(tlv(0x04, Buffer.alloc(3)))).toBe('0403000000');
    expect(hex(tlv(0x04, Buffer.alloc(200)).subarray(0, 3))).toBe('0481c8');
    expect(hex(tlv(0x04, Buffer.alloc(300)).subarray(0, 4))).toBe('0482012c');
    expect(hex(seq())).toBe('3000');
  });

  it('encodes object identifiers, arcs of 128 and more in base 128', () => {
    expect(hex(oid('2.5.4.3'))).toBe('0603550403');
    expect(hex(oid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b');
    expect(hex(oid('1.3.6.1.5.5.7.3.1'))).toBe('06082b06010505070301');
  });

  it('keeps an INTEGER positive and minimal', () => {
    expect(hex(positiveInteger(Buffer.from('7f', 'hex')))).toBe('02017f');
    expect(hex(positiveInteger(Buffer.from('80', 'hex')))).toBe('02020080');
    expect(hex(positiveInteger(Buffer.from('000001', 'hex')))).toBe('020101');
    expect(hex(positiveInteger(Buffer.from('00', 'hex')))).toBe('020100');
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050, and refuses other years', () => {
    expect(time(new Date('2049-12-31T23:59:59.900Z')).toString('latin1')).toBe('\x17\x0d491231235959Z');
    expect(time(new Date('2050-01-01T00:00:00Z')).toString('latin1')).toBe('\x18\x0f20500101000000Z');
    expect(() => time(new Date('1949-12-31T00:00:00Z'))).toThrow(RangeError);
  });

  it('writes UTF-8 strings by their byte length', () => {
    expect(hex(utf8('é'))).toBe('0c02c3a9');
  });
});

describe('DER reader', () => {
  it("finds a certificate's subject exactly as it is encoded", () => {
    const cert = new X509Certificate(TLS_FIXTURES.ca);
    const subject = certificateSubject(Buffer.from(cert.raw));
    expect(subject[0]).toBe(0x30);
    // The CA is self-issued: its issuer is its subject, and both byte strings appear in the TBS.
    expect(Buffer.from(cert.raw).indexOf(subject)).toBeGreaterThan(0);
    expect(subject.toString('latin1')).toContain(cert.subject.split('\n').at(-1)?.split('=').at(-1) ?? '?');
  });

  it('refuses truncated input and lengths it does not read', () => {
    expect(() => extentAt(Buffer.from('3005', 'hex'), 0)).toThrow(/truncated/);
    expect(() => extentAt(Buffer.from('3080', 'hex'), 0)).toThrow(/bad length/); // indefinite length: not DER
    expect(() => extentAt(Buffer.from('3085ffffffffff', 'hex'), 0)).toThrow(/bad length/);
    expect(() => certificateSubject(Buffer.from('300402020000', 'hex'))).toThrow(RangeError);
  });
});

describe("a CA's subjectKeyIdentifier, read from its DER", () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-ski-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** A self-signed RSA CA made by OpenSSL, with its default key id or none (`none`). */
  const ca = (name: string, ski: 'hash' | 'none'): { x509: X509Certificate; keyPath: string } => {
    const keyPath = join(dir, 'key.pem');
    if (!existsSync(keyPath)) execFileSync('openssl', ['genrsa', '-out', keyPath, '2048'], { stdio: 'ignore' });
    const certPath = join(dir, `${name}.pem`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        keyPath,
        '-subj',
        `/CN=${name}`,
        '-days',
        '2',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        `subjectKeyIdentifier=${ski}`,
        '-out',
        certPath,
      ],
      { stdio: 'ignore' },
    );
    return { x509: new X509Certificate(readFileSync(certPath)), keyPath };
  };

  it('equals the id OpenSSL prints, and is absent from a CA made without one', () => {
    const { x509 } = ca('with-id', 'hash');
    const printed = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier'], { input: x509.toString() }).toString();
    expect(hex(subjectKeyIdentifierOf(x509.raw)!)).toBe(printed.split('\n')[1]!.trim().replaceAll(':', '').toLowerCase());
    expect(subjectKeyIdentifierOf(ca('without-id', 'none').x509.raw)).toBeUndefined();
    expect(subjectKeyIdentifierOf(new X509Certificate(TLS_FIXTURES.ca).raw)?.length).toBe(20);
  });

  it("a keyway on a CA without one signs leaves naming the id computed from the CA's key, as OpenSSL computes it", async () => {
    const withId = ca('with-id-2', 'hash');
    const without = ca('without-id-2', 'none');
    const certsDir = join(dir, 'certs');
    mkdirSync(certsDir, { mode: 0o700 });
    writeFileSync(join(certsDir, 'ca.pem'), without.x509.toString());
    writeFileSync(join(certsDir, 'ca-key.pem'), readFileSync(without.keyPath));
    const loaded = await loadOrCreateCa(certsDir);
    expect(hex(loaded.keyId)).toBe(hex(subjectKeyIdentifierOf(withId.x509.raw)!)); // the same key's id, by OpenSSL
    const leaf = new X509Certificate(new LeafMinter(loaded).mint('api.example.test').certPem);
    expect(leaf.verify(without.x509.publicKey)).toBe(true);
    const aki = execFileSync('openssl', ['x509', '-noout', '-ext', 'authorityKeyIdentifier'], { input: leaf.toString() }).toString();
    expect(aki.replaceAll(':', '').toLowerCase()).toContain(hex(loaded.keyId));
  });
});
