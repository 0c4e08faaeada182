// Per-host server certificates for intercepted connections, signed by keyway's CA.
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import { forge } from './forge.ts';
import type { CertificateAuthority } from './ca.ts';
import { classifyHost, normaliseHost } from './host.ts';
import { DAY_MS, HOUR_MS, certificateToPem, opensslSigner, randomSerial, subjectKeyId } from './x509-util.ts';

// Under the 398-day ceiling Apple and browsers enforce for server certificates. Leaves live only in
// memory and are re-minted every start, so a long lifetime costs nothing and avoids mid-run expiry.
const LEAF_LIFETIME_MS = 365 * DAY_MS;
// Backdated so a client whose clock runs a little behind does not see a "not yet valid" certificate.
const CLOCK_SKEW_MS = HOUR_MS;

export interface LeafCertificate {
  certPem: string;
  keyPem: string;
}

export class LeafMinter {
  readonly #ca: CertificateAuthority;
  readonly #caSigner: Forge.pki.rsa.PrivateKey;
  readonly #caKeyId: string;
  readonly #leafSpki: Forge.asn1.Asn1;
  readonly #leafKeyId: string;
  readonly #leafKeyPem: string;

  constructor(ca: CertificateAuthority) {
    this.#ca = ca;
    this.#caSigner = opensslSigner(ca.key);
    this.#caKeyId = subjectKeyId(ca.cert);
    // One key pair for every host. Sharing is safe here because the key never leaves this process
    // and all leaves are trusted only through keyway's CA. ECDSA P-256 rather than RSA: every
    // client handshake makes the server sign, 0.03 ms with P-256 against 0.4 ms with RSA 2048
    // (openssl speed on these machines), which is most of what a new host costs keyway.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    this.#leafSpki = forge.asn1.fromDer(forge.util.createBuffer(spki.toString('binary')));
    // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the 65-byte P-256 point).
    this.#leafKeyId = createHash('sha1')
      .update(spki.subarray(spki.length - 65))
      .digest()
      .toString('binary');
    this.#leafKeyPem = exportKey(privateKey);
  }

  /** `host` is a DNS name or an IP literal (v4 or v6, brackets allowed); anything else throws bad_request. */
  mint(host: string, now: Date = new Date()): LeafCertificate {
    const name = normaliseHost(host);
    const target = classifyHost(name);
    const cert = forge.pki.createCertificate();
    // forge only builds RSA key structures: it lays out the certificate around the CA's RSA key,
    // and the leaf's P-256 key is put in its place before signing (see sign below).
    cert.publicKey = this.#ca.cert.publicKey;
    cert.serialNumber = randomSerial();
    cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    // A leaf cannot outlive its issuer in any validator, so do not claim otherwise.
    cert.validity.notAfter = new Date(Math.min(now.getTime() + LEAF_LIFETIME_MS, this.#ca.notAfter.getTime()));
    cert.setSubject([{ shortName: 'CN', value: name }]);
    cert.setIssuer(this.#ca.cert.subject.attributes);

    // Clients match on the SAN, not the CN; an IP must be an iPAddress entry (type 7), a name a dNSName (type 2).
    const altName = target.kind === 'ip' ? { type: 7, value: target.bytes.toString('binary') } : { type: 2, value: target.name };
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [altName] },
      // Must be the CA's key id; forge's `keyIdentifier: true` would write this leaf's own id instead.
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#caKeyId },
      // Given as a value: forge would otherwise derive it from the placeholder (the CA's) key.
      { name: 'subjectKeyIdentifier', value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, this.#leafKeyId) },
    ]);
    this.#sign(cert);
    return { certPem: certificateToPem(cert), keyPem: this.#leafKeyPem };
  }

  /** forge's cert.sign() with the leaf's EC SubjectPublicKeyInfo swapped into the TBSCertificate first. */
  #sign(cert: Forge.pki.Certificate): void {
    const signatureOid = forge.pki.oids['sha256WithRSAEncryption']!;
    const withOids = cert as Forge.pki.Certificate & { signatureOid: string; siginfo: { algorithmOid: string }; tbsCertificate: Forge.asn1.Asn1 };
    withOids.signatureOid = signatureOid;
    withOids.siginfo.algorithmOid = signatureOid;
    const tbs = (forge.pki as unknown as { getTBSCertificate(c: Forge.pki.Certificate): Forge.asn1.Asn1 }).getTBSCertificate(cert);
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
    (tbs.value as Forge.asn1.Asn1[])[6] = this.#leafSpki;
    withOids.tbsCertificate = tbs;
    const md = forge.md.sha256.create();
    md.update(forge.asn1.toDer(tbs).getBytes());
    cert.md = md;
    cert.signature = this.#caSigner.sign(md);
  }
}

function exportKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
