// The DER pieces leaf certificates are built from (src/tls/der.ts): checked against what OpenSSL
// (through node:crypto) reads back, and against hand-encoded bytes from X.690's rules.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateSubject, extentAt, oid, positiveInteger, seq, time, tlv, utf8 } from '../../src/tls/der.ts';
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
