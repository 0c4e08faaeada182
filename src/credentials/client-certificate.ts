import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { KeywayError } from '../errors/index.ts';

// A client certificate keyway presents to an upstream (mTLS): the certificate chain and its private
// key, PEM, as the store keeps them (a PKCS#12 bundle is turned into this form when it is set:
// tls/pkcs12.ts). Read with Node's own crypto only. Messages never quote the input: it holds a key.

export interface ClientCertificateMaterial {
  /** PEM: the client certificate first, then any intermediates. */
  certificate: string;
  /** PEM: PKCS#8, PKCS#1 or SEC1, encrypted or not. */
  privateKey: string;
  passphrase?: string | undefined;
}

/** A client certificate read and checked once (when the grant table is built), ready for a TLS context. */
export interface LoadedClientCertificate {
  readonly ok: true;
  /** The chain, PEM, as given. */
  readonly certificate: string;
  /** The key, decrypted, PKCS#8 PEM: only ever handed to a TLS secure context. */
  readonly privateKey: string;
  readonly subject: string;
  /** Epoch ms of the leaf's notAfter. */
  readonly notAfter: number;
  /** Tells one certificate-and-key pair from another (connection pools are kept per pair). */
  readonly poolKey: string;
}

/** A client certificate that cannot be used: the request is refused before connecting, with why. */
export interface BrokenClientCertificate {
  readonly ok: false;
  readonly problem: string;
}

export type ClientCertificate = LoadedClientCertificate | BrokenClientCertificate;

/** A client certificate is "expiring" this long before notAfter (listings, doctor, the start log). */
export const CERTIFICATE_EXPIRING_WITHIN_MS = 14 * 24 * 3_600_000;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The material's fields checked for shape (from JSON, camelCase already). Throws a usage error naming the field. */
export function clientCertificateFields(obj: Record<string, unknown>, what: string): ClientCertificateMaterial {
  const str = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.trim() === '') throw new KeywayError('usage', `${what}: "${key}" must be a non-empty string`);
    return v;
  };
  if (obj['pkcs12'] !== undefined) {
    throw new KeywayError(
      'usage',
      `${what}: a PKCS#12 bundle is read when set with keyway secrets set or the admin API; here give {certificate, privateKey} in PEM`,
    );
  }
  const material = { certificate: str('certificate', true)!, privateKey: str('privateKey', true)!, passphrase: str('passphrase', false) };
  loadClientCertificate(material, what, true);
  return material;
}

/**
 * Reads the chain and key and checks that they belong together. With `strict` a problem throws (at
 * `secrets set`: a clear usage error); otherwise it is returned, and requests with the grant are
 * refused with it, while the proxy serves everyone else.
 */
export function loadClientCertificate(material: ClientCertificateMaterial, what: string, strict = false): ClientCertificate {
  const fail = (problem: string): BrokenClientCertificate => {
    if (strict) throw new KeywayError('usage', `${what}: ${problem}`);
    return { ok: false, problem };
  };
  const pems = material.certificate.match(PEM_CERT);
  if (!pems) return fail('the certificate is not PEM (-----BEGIN CERTIFICATE-----)');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pems[0]!);
  } catch {
    return fail('the certificate cannot be read (not an X.509 certificate in PEM)');
  }
  let privateKey: string;
  try {
    const key = createPrivateKey({
      key: material.privateKey,
      format: 'pem',
      ...(material.passphrase !== undefined ? { passphrase: material.passphrase } : {}),
    });
    if (!leaf.checkPrivateKey(key)) return fail('the private key does not belong to the certificate');
    privateKey = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  } catch (err) {
    if (err instanceof KeywayError) throw err;
    const encrypted = /ENCRYPTED/.test(material.privateKey);
    return fail(
      encrypted
        ? material.passphrase === undefined
          ? 'the private key is encrypted: give its passphrase'
          : 'the private key cannot be decrypted: wrong passphrase'
        : 'the private key cannot be read (expected a PEM private key)',
    );
  }
  const notAfter = Date.parse(leaf.validTo);
  const poolKey = createHash('sha256').update(pems.join('\n')).update('\0').update(privateKey).digest('hex');
  return { ok: true, certificate: pems.join('\n'), privateKey, subject: leaf.subject.replace(/\n/g, ', '), notAfter, poolKey };
}

/** One line on the certificate's clock, for listings and the start log; undefined when it is far from expiry. */
export function certificateWarning(cert: ClientCertificate, now: number): string | undefined {
  if (!cert.ok) return `client certificate unusable: ${cert.problem}`;
  const when = new Date(cert.notAfter).toISOString();
  if (cert.notAfter <= now) return `client certificate expired at ${when}`;
  if (cert.notAfter - now <= CERTIFICATE_EXPIRING_WITHIN_MS) return `client certificate expires at ${when}`;
  return undefined;
}
