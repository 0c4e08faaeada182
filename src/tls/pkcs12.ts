import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';
import { KeywayError } from '../errors/index.ts';

// A PKCS#12 bundle (.p12, .pfx) turned into the PEM chain and key keyway keeps for a client
// certificate (credentials/client-certificate.ts). node-forge reads it, since Node's own `pfx`
// support refuses the legacy encryptions (RC2, 3DES) many exported bundles still use; forge's PKCS#12
// part is loaded only here, when a bundle is set, never by the running proxy. Messages never quote
// the bundle or the passphrase.

export interface PemClientCertificate {
  certificate: string;
  privateKey: string;
}

export function pkcs12ToPem(base64: string, passphrase: string | undefined): PemClientCertificate {
  const require = createRequire(import.meta.url);
  const forge = require('node-forge/lib/forge') as typeof Forge;
  require('node-forge/lib/pkcs12');
  require('node-forge/lib/pki');
  const der = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new KeywayError('usage', 'the PKCS#12 bundle is empty (expected base64 of a .p12 file)');
  let p12: Forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString('binary')), passphrase ?? '');
  } catch (err) {
    const message = (err as Error).message ?? '';
    if (/MAC could not be verified|Invalid password/i.test(message)) {
      throw new KeywayError('usage', passphrase === undefined ? 'the PKCS#12 bundle needs a passphrase' : 'the PKCS#12 bundle does not open: wrong passphrase');
    }
    throw new KeywayError('usage', 'the PKCS#12 bundle cannot be read (corrupt, or not a .p12/.pfx file)');
  }
  // forge opens the container; Node's crypto reads what is in it, so EC and Ed25519 keys work as RSA
  // ones do (forge parses RSA alone, and hands any other key or certificate back as ASN.1).
  const toDer = (value: Forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(value).getBytes(), 'binary');
  const bags = (type: string) => p12.getBags({ bagType: type })[type] ?? [];
  const keyBag = [...bags(forge.pki.oids.pkcs8ShroudedKeyBag!), ...bags(forge.pki.oids.keyBag!)].find((b) => b.key || b.asn1);
  if (!keyBag) throw new KeywayError('usage', 'the PKCS#12 bundle holds no private key');
  let key: KeyObject;
  try {
    const info = keyBag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keyBag.key)) : keyBag.asn1;
    key = createPrivateKey({ key: toDer(info), format: 'der', type: 'pkcs8' });
  } catch {
    throw new KeywayError('usage', 'the PKCS#12 bundle holds a private key of a kind keyway cannot read');
  }
  const certs = bags(forge.pki.oids.certBag!).flatMap((b) => {
    const asn1 = b.cert ? forge.pki.certificateToAsn1(b.cert) : b.asn1;
    return asn1 ? [new X509Certificate(toDer(asn1))] : [];
  });
  if (certs.length === 0) throw new KeywayError('usage', 'the PKCS#12 bundle holds no certificate');
  // The certificate whose public key goes with the private key comes first; the rest is its chain.
  const isLeaf = (c: X509Certificate) => c.checkPrivateKey(key);
  const ordered = [...certs.filter(isLeaf), ...certs.filter((c) => !isLeaf(c))];
  return {
    certificate: ordered.map((c) => c.toString()).join(''),
    privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}
