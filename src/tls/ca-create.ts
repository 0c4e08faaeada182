// Building a fresh local CA. Only the PEM text is produced here; ca.ts decides where it goes and
// re-reads it through the same checks as a CA loaded from disk.
import { createHash, generateKeyPair, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { util } from '../builtins.ts';
import { NULL, TRUE, bits, octets, oid, positiveInteger, seq, set, time, tlv, utf8 } from './der.ts';
import { DAY_MS, HOUR_MS, randomSerial, toPem } from './x509-util.ts';

const generateKeyPairAsync = util.promisify(generateKeyPair);

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

const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), NULL);
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

/** The CA's certificate, written as DER (der.ts) and signed by its own key in OpenSSL. */
function buildCaCertificate(publicKey: KeyObject, privateKey: KeyObject, now: Date): string {
  // The suffix makes each install's CA distinguishable in trust stores and keychains, where two
  // entries both called "keyway local CA" could not be told apart when removing an old one.
  const suffix = randomBytes(3).toString('hex');
  const name = seq(set(seq(oid('2.5.4.3'), utf8(`keyway local CA ${suffix}`))), set(seq(oid('2.5.4.10'), utf8('keyway'))));
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (for RSA, the PKCS#1 RSAPublicKey).
  const keyId = createHash('sha1')
    .update(publicKey.export({ type: 'pkcs1', format: 'der' }))
    .digest();
  const tbs = seq(
    tlv(0xa0, positiveInteger(Buffer.from([2]))), // v3
    positiveInteger(Buffer.from(randomSerial(), 'hex')),
    SHA256_WITH_RSA,
    name,
    seq(time(new Date(now.getTime() - HOUR_MS)), time(new Date(now.getTime() + CA_LIFETIME_MS))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(
      0xa3,
      seq(
        // basicConstraints, critical: cA TRUE, pathLen 0 (this CA signs leaves only, never another CA).
        extension('2.5.29.19', true, seq(TRUE, positiveInteger(Buffer.from([0])))),
        // keyUsage, critical: keyCertSign (bit 5) and cRLSign (bit 6); one unused bit.
        extension('2.5.29.15', true, Buffer.from('03020106', 'hex')),
        extension('2.5.29.14', false, octets(keyId)), // subjectKeyIdentifier
      ),
    ),
  );
  // RSASSA-PKCS1-v1_5 with SHA-256: node:crypto's default padding for an RSA key.
  return toPem(seq(tbs, SHA256_WITH_RSA, bits(sign('sha256', tbs, privateKey))));
}
