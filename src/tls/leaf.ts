// Per-host server certificates for intercepted connections, signed by keyway's CA.
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import forge from 'node-forge';
import type { CertificateAuthority } from './ca.ts';
import { classifyHost, normaliseHost } from './host.ts';
import { DAY_MS, HOUR_MS, certificateToPem, forgePublicKey, opensslSigner, randomSerial, subjectKeyId } from './x509-util.ts';

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
  readonly #caSigner: forge.pki.rsa.PrivateKey;
  readonly #caKeyId: string;
  readonly #leafPublicKey: forge.pki.PublicKey;
  readonly #leafKeyPem: string;

  constructor(ca: CertificateAuthority) {
    this.#ca = ca;
    this.#caSigner = opensslSigner(ca.key);
    this.#caKeyId = subjectKeyId(ca.cert);
    // One key pair for every host: generating RSA costs ~50 ms, signing ~1 ms. Sharing is safe here
    // because the key never leaves this process and all leaves are trusted only through keyway's CA.
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#leafPublicKey = forgePublicKey(publicKey);
    this.#leafKeyPem = exportKey(privateKey);
  }

  /** `host` is a DNS name or an IP literal (v4 or v6, brackets allowed); anything else throws bad_request. */
  mint(host: string, now: Date = new Date()): LeafCertificate {
    const name = normaliseHost(host);
    const target = classifyHost(name);
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.#leafPublicKey;
    cert.serialNumber = randomSerial();
    cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    // A leaf cannot outlive its issuer in any validator, so do not claim otherwise.
    cert.validity.notAfter = new Date(Math.min(now.getTime() + LEAF_LIFETIME_MS, this.#ca.notAfter.getTime()));
    cert.setSubject([{ shortName: 'CN', value: name }]);
    cert.setIssuer(this.#ca.cert.subject.attributes);

    // Clients match on the SAN, not the CN; an IP must be an iPAddress entry (type 7), a name a dNSName (type 2).
    const altName =
      target.kind === 'ip'
        ? { type: 7, value: target.bytes.toString('binary') }
        : { type: 2, value: target.name };
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [altName] },
      // Must be the CA's key id; forge's `keyIdentifier: true` would write this leaf's own id instead.
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#caKeyId },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(this.#caSigner, forge.md.sha256.create());
    return { certPem: certificateToPem(cert), keyPem: this.#leafKeyPem };
  }
}

function exportKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
