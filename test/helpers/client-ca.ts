// Client-certificate authorities for mTLS tests: a CA made at run time, and client certificates it
// issues with any validity (an expired one included), their keys made by Node (fast) and the
// certificates signed with node-forge.
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';

export interface TestCa {
  certPem: string;
  key: forge.pki.rsa.PrivateKey;
  cert: forge.pki.Certificate;
}

export interface ClientCert {
  certPem: string;
  /** PKCS#8 PEM, not encrypted. */
  keyPem: string;
  /** The same key encrypted with `passphrase` (PKCS#8, AES-256-CBC). */
  encryptedKeyPem(passphrase: string): string;
}

const DAY = 24 * 3_600_000;

function keyPair() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey;
}

function serial(): string {
  return `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
}

export function makeTestCa(name: string): TestCa {
  const keyObject = keyPair();
  const key = forge.pki.privateKeyFromPem(keyObject.export({ type: 'pkcs1', format: 'pem' }) as string) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 30 * DAY);
  cert.validity.notAfter = new Date(Date.now() + 365 * DAY);
  const subject = [{ name: 'commonName', value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), key, cert };
}

/** A client certificate for `cn`, valid from `notBefore` to `notAfter` (epoch ms). */
export function issueClientCert(ca: TestCa, cn: string, validity: { notBefore?: number; notAfter?: number } = {}): ClientCert {
  const keyObject = keyPair();
  const key = forge.pki.privateKeyFromPem(keyObject.export({ type: 'pkcs1', format: 'pem' }) as string) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(validity.notBefore ?? Date.now() - DAY);
  cert.validity.notAfter = new Date(validity.notAfter ?? Date.now() + 90 * DAY);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: keyObject.export({ type: 'pkcs8', format: 'pem' }) as string,
    encryptedKeyPem: (passphrase) => keyObject.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string,
  };
}
