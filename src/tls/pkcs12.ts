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
  const bags = (type: string) => p12.getBags({ bagType: type })[type] ?? [];
  const keyBag = [...bags(forge.pki.oids.pkcs8ShroudedKeyBag!), ...bags(forge.pki.oids.keyBag!)].find((b) => b.key);
  const certs = bags(forge.pki.oids.certBag!).flatMap((b) => (b.cert ? [b.cert] : []));
  if (!keyBag?.key) throw new KeywayError('usage', 'the PKCS#12 bundle holds no private key');
  if (certs.length === 0) throw new KeywayError('usage', 'the PKCS#12 bundle holds no certificate');
  // The certificate whose public key goes with the private key comes first; the rest is its chain.
  const key = keyBag.key as Forge.pki.rsa.PrivateKey;
  const isLeaf = (c: Forge.pki.Certificate) => {
    const pub = c.publicKey as Forge.pki.rsa.PublicKey;
    return pub.n !== undefined && key.n !== undefined && pub.n.equals(key.n);
  };
  const ordered = [...certs.filter(isLeaf), ...certs.filter((c) => !isLeaf(c))];
  return {
    certificate: ordered.map((c) => forge.pki.certificateToPem(c)).join(''),
    privateKey: forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key))),
  };
}
