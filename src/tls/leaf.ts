// Per-host server certificates for intercepted connections, signed by keyway's CA.
import { X509Certificate, createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CertificateAuthority } from './ca.ts';
import { NULL, TRUE, bits, certificateSubject, octets, oid, positiveInteger, seq, set, time, tlv, utf8 } from './der.ts';
import { classifyHost, normaliseHost } from './host.ts';
import { DAY_MS, HOUR_MS, randomSerial, toPem } from './x509-util.ts';

// Under the 398-day ceiling Apple and browsers enforce for server certificates. Leaves live only in
// memory and are re-minted every start, so a long lifetime costs nothing and avoids mid-run expiry.
const LEAF_LIFETIME_MS = 365 * DAY_MS;
// Backdated so a client whose clock runs a little behind does not see a "not yet valid" certificate.
const CLOCK_SKEW_MS = HOUR_MS;

const VERSION_3 = tlv(0xa0, Buffer.from('020102', 'hex'));
const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), NULL);
const COMMON_NAME = oid('2.5.4.3');
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

export interface LeafCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * Mints leaves as DER bytes: everything but the serial, the validity, the name and its SAN is the
 * same for every host and is encoded once here; the CA's key signs the TBSCertificate in OpenSSL.
 */
export class LeafMinter {
  readonly #caKey: KeyObject;
  readonly #caNotAfter: number;
  readonly #issuer: Buffer;
  readonly #leafSpki: Buffer;
  /** The extensions before the SAN, and after it (the CA's and the leaf's key ids). */
  readonly #extensionsBefore: Buffer;
  readonly #extensionsAfter: Buffer;
  readonly #leafKeyPem: string;

  constructor(ca: CertificateAuthority) {
    // The signature algorithm below is sha256WithRSAEncryption: a CA with another key type is refused here, not at the first handshake.
    if (ca.key.asymmetricKeyType !== 'rsa') throw new Error(`keyway's CA key must be RSA to sign leaves (found ${ca.key.asymmetricKeyType})`);
    this.#caKey = ca.key;
    this.#caNotAfter = ca.notAfter.getTime();
    this.#issuer = Buffer.from(certificateSubject(Buffer.from(new X509Certificate(ca.certPem).raw)));
    // One key pair for every host. Sharing is safe here because the key never leaves this process
    // and all leaves are trusted only through keyway's CA. ECDSA P-256 rather than RSA: every
    // client handshake makes the server sign, 0.03 ms with P-256 against 0.4 ms with RSA 2048
    // (openssl speed on these machines), which is most of what a new host costs keyway.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#leafSpki = publicKey.export({ type: 'spki', format: 'der' });
    // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the 65-byte P-256 point).
    const leafKeyId = createHash('sha1')
      .update(this.#leafSpki.subarray(this.#leafSpki.length - 65))
      .digest();
    // Must be the CA's key id (ca.ts: computed from its key if a foreign CA lacks the extension).
    const caKeyId = ca.keyId;
    this.#extensionsBefore = Buffer.concat([
      extension('2.5.29.19', true, seq()), // basicConstraints: cA FALSE (the DEFAULT, so empty)
      extension('2.5.29.15', true, Buffer.from('03020780', 'hex')), // keyUsage: digitalSignature only (RFC 5480 for EC keys)
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
    ]);
    this.#extensionsAfter = Buffer.concat([
      extension('2.5.29.35', false, seq(tlv(0x80, caKeyId))), // authorityKeyIdentifier [0] keyIdentifier
      extension('2.5.29.14', false, octets(leafKeyId)), // subjectKeyIdentifier
    ]);
    this.#leafKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** `host` is a DNS name or an IP literal (v4 or v6, brackets allowed); anything else throws bad_request. */
  mint(host: string, now: Date = new Date()): LeafCertificate {
    const name = normaliseHost(host);
    const target = classifyHost(name);
    // Clients match on the SAN, not the CN; an IP must be an iPAddress entry ([7]), a name a dNSName ([2], IA5String).
    const altName = target.kind === 'ip' ? tlv(0x87, target.bytes) : tlv(0x82, Buffer.from(target.name, 'latin1'));
    const tbs = seq(
      VERSION_3,
      positiveInteger(Buffer.from(randomSerial(), 'hex')),
      SHA256_WITH_RSA,
      this.#issuer,
      // A leaf cannot outlive its issuer in any validator, so do not claim otherwise.
      seq(time(new Date(now.getTime() - CLOCK_SKEW_MS)), time(new Date(Math.min(now.getTime() + LEAF_LIFETIME_MS, this.#caNotAfter)))),
      seq(set(seq(COMMON_NAME, utf8(name)))),
      this.#leafSpki,
      tlv(0xa3, seq(this.#extensionsBefore, extension('2.5.29.17', false, seq(altName)), this.#extensionsAfter)),
    );
    // RSASSA-PKCS1-v1_5 with SHA-256, OpenSSL's: node:crypto's default padding for an RSA key.
    const signature = sign('sha256', tbs, this.#caKey);
    return { certPem: toPem(seq(tbs, SHA256_WITH_RSA, bits(signature))), keyPem: this.#leafKeyPem };
  }
}
