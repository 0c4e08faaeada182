// Building a fresh local CA. Only the PEM text is produced here; ca.ts decides where it goes and
// re-reads it through the same checks as a CA loaded from disk.
import { generateKeyPair, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { forge } from './forge.ts';
import { DAY_MS, HOUR_MS, certificateToPem, forgePublicKey, opensslSigner, randomSerial } from './x509-util.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

// Long enough that users do not have to re-trust it often; the private key never leaves certsDir.
const CA_LIFETIME_MS = 3650 * DAY_MS;

export interface NewCaPem {
  certPem: string;
  keyPem: string;
}

export async function createCaPem(now: Date = new Date()): Promise<NewCaPem> {
  // Async so a start-up never blocks the event loop for the ~50 ms RSA generation takes.
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const certPem = buildCaCertificate(publicKey, privateKey, now);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem };
}

function buildCaCertificate(publicKey: KeyObject, privateKey: KeyObject, now: Date): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublicKey(publicKey);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - HOUR_MS);
  cert.validity.notAfter = new Date(now.getTime() + CA_LIFETIME_MS);

  // The suffix makes each install's CA distinguishable in trust stores and keychains, where two
  // entries both called "keyway local CA" could not be told apart when removing an old one.
  const suffix = randomBytes(3).toString('hex');
  const subject = [
    { shortName: 'CN', value: `keyway local CA ${suffix}` },
    { shortName: 'O', value: 'keyway' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathLen 0: this CA signs leaves only, never another CA.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    // forge fills this from cert.publicKey (SHA-1 of the key bits, RFC 5280 method 1).
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(opensslSigner(privateKey), forge.md.sha256.create());
  return certificateToPem(cert);
}
