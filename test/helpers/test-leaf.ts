// A server certificate for made-up AWS-shaped host names (s3.us-east-1.amazonaws.com,
// bucket.s3.us-east-1.amazonaws.com, sts.amazonaws.com), issued at run time by the committed test CA,
// so that clients and keyway trust it through TLS_FIXTURES.ca exactly as they trust the committed
// leaf. The committed leaf only covers *.example.test, and a wildcard covers one label, so a
// virtual-hosted bucket name needs its own `*.s3.REGION.amazonaws.com` entry. Nothing here resolves
// those names: tests reach them through keyway's `proxy.hosts` or a client's own lookup.
import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import { TLS_FIXTURES } from './fixtures.ts';

const caKeyPath = new URL('../fixtures/tls/upstream-ca-key.pem', import.meta.url);

/** The AWS-shaped names the S3 front, the STS double and the JSON service answer for by default. */
export const AWS_TEST_HOSTS = [
  's3.amazonaws.com',
  's3.us-east-1.amazonaws.com',
  's3.eu-west-1.amazonaws.com',
  'sts.amazonaws.com',
  'sts.us-east-1.amazonaws.com',
  'dynamodb.us-east-1.amazonaws.com',
  's3.example.test',
  'sts.example.test',
  'dynamodb.example.test',
];

/** Each name and, for S3 endpoints, its virtual-hosted bucket wildcard. */
function subjectNames(hosts: string[]): string[] {
  const names = new Set<string>(['localhost', ...hosts]);
  for (const host of hosts) if (/^s3[.-]/.test(host)) names.add(`*.${host}`);
  return [...names];
}

/** A PEM certificate for `hosts` (plus 127.0.0.1 and localhost) and its key, valid for one day. */
export function mintTestLeaf(hosts: string[] = AWS_TEST_HOSTS): { cert: string; key: string } {
  const caCert = forge.pki.certificateFromPem(TLS_FIXTURES.ca);
  const caKey = forge.pki.privateKeyFromPem(readFileSync(caKeyPath, 'utf8'));
  const leafKey = forge.pki.privateKeyFromPem(TLS_FIXTURES.key) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(leafKey.n, leafKey.e);
  cert.serialNumber = `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 24 * 60 * 60 * 1000);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...subjectNames(hosts).map((value) => ({ type: 2, value })), { type: 7, ip: '127.0.0.1' }],
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: TLS_FIXTURES.key };
}
