// keyway's local CA: created once in certsDir, loaded on every later start. The user trusts this
// certificate, so the files are never overwritten: a damaged CA stops keyway with a clear message
// instead of being silently replaced by one nobody trusts.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KeywayError } from '../errors/index.ts';
import { type BundleWriter, ensureBundle } from './bundle.ts';
import { subjectKeyIdentifierOf } from './der.ts';
import { writeNewFile } from '../files/atomic-write.ts';

export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** System roots plus keyway's CA: the file to give clients whose CA variable replaces their store. */
  readonly bundlePath: string;
  /** Colon-separated upper-case hex, as Node's X509Certificate prints it. */
  readonly fingerprint256: string;
  readonly notAfter: Date;
  /** The CA's subjectKeyIdentifier (computed from its key if a foreign CA lacks the extension): each leaf's authorityKeyIdentifier. */
  readonly keyId: Buffer;
  readonly key: KeyObject;
}

const RACE_WAIT_MS = 200;

interface CaPaths {
  certPath: string;
  keyPath: string;
  bundlePath: string;
}

function caPaths(certsDir: string): CaPaths {
  return {
    certPath: join(certsDir, 'ca.pem'),
    keyPath: join(certsDir, 'ca-key.pem'),
    bundlePath: join(certsDir, 'bundle.pem'),
  };
}

/** `writeBundle`: how the CA bundle is written when it must be (bundle.ts). */
export async function loadOrCreateCa(certsDir: string, writeBundle?: BundleWriter): Promise<CertificateAuthority> {
  const paths = caPaths(certsDir);
  // 0700 only applies when the directory is new; an existing directory's mode is the user's choice.
  await mkdir(certsDir, { recursive: true, mode: 0o700 });
  return withBundle(paths, await loadOrCreate(paths), writeBundle);
}

/**
 * The CA if there is one, else undefined: for commands that only show it (`keyway ca`), which must
 * not make a CA nobody asked for (and the user would then trust by mistake). The bundle, derived
 * from the CA, is brought up to date as at start.
 */
export async function loadExistingCa(certsDir: string): Promise<CertificateAuthority | undefined> {
  const paths = caPaths(certsDir);
  const files = await readBoth(paths);
  if (files.certPem === undefined && files.keyPem === undefined) return undefined;
  return withBundle(paths, loadExisting(paths, files));
}

export interface ImportedCa {
  ca: CertificateAuthority;
  /** false when the home already held this very CA (a replica restarting): nothing was written. */
  imported: boolean;
}

/**
 * Puts a CA made elsewhere (`keyway init --home DIR` once, kept in a Secret) into certsDir, so
 * replicas behind one Service present leaves from one CA their clients trust. The pair gets the
 * same checks as a CA loaded at start, naming the files given. A home that already holds this CA is
 * left as it is; one that holds another is refused: its CA is what clients trust now.
 */
export async function importCa(certsDir: string, source: { certPath: string; keyPath: string }): Promise<ImportedCa> {
  const paths = caPaths(certsDir);
  const given = await readBoth({ ...source, bundlePath: '' });
  if (given.certPem === undefined) throw invalid(`${source.certPath} does not exist`);
  if (given.keyPem === undefined) throw invalid(`${source.keyPath} does not exist`);
  const incoming = parseCa({ ...source, bundlePath: paths.bundlePath }, given.certPem, given.keyPem);
  await mkdir(certsDir, { recursive: true, mode: 0o700 });
  const existing = await readBoth(paths);
  if (existing.certPem !== undefined || existing.keyPem !== undefined) {
    const current = loadExisting(paths, existing);
    if (current.fingerprint256 !== incoming.fingerprint256) {
      throw invalid(
        `${paths.certPath} already holds another CA (SHA-256 ${current.fingerprint256}); clients trust it now. Move ca.pem and ca-key.pem away first to replace it`,
      );
    }
    return { ca: await withBundle(paths, current), imported: false };
  }
  try {
    // Key first, as at creation: a ca.pem on disk always has its key beside it.
    await writeNewFile(paths.keyPath, incoming.keyPem, 0o600);
    await writeNewFile(paths.certPath, incoming.certPem, 0o644);
  } catch (err) {
    throw invalid(`cannot write the CA into ${certsDir}: ${firstLine(err)}`, err);
  }
  return { ca: await withBundle(paths, parseCa(paths, incoming.certPem, incoming.keyPem)), imported: true };
}

async function withBundle(paths: CaPaths, ca: CertificateAuthority, writeBundle?: BundleWriter): Promise<CertificateAuthority> {
  try {
    await ensureBundle(paths.bundlePath, ca.certPem, writeBundle);
  } catch (err) {
    throw invalid(`cannot write ${paths.bundlePath}: ${firstLine(err)}`, err);
  }
  return ca;
}

async function loadOrCreate(paths: CaPaths): Promise<CertificateAuthority> {
  const existing = await readBoth(paths);
  if (existing.certPem !== undefined || existing.keyPem !== undefined) return loadExisting(paths, existing);

  // forge builds the CA, once: loaded here, so a keyway that starts with its CA never loads it.
  const { createCaPem } = await import('./ca-create.ts');
  const { certPem, keyPem } = await createCaPem();
  try {
    // Key first: a ca.pem on disk then always has its key beside it, and a process racing us loses
    // at the key (link never replaces) and so never writes a certificate that does not match.
    await writeNewFile(paths.keyPath, keyPem, 0o600);
    await writeNewFile(paths.certPath, certPem, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw invalid(`cannot create the CA in ${paths.certPath}: ${firstLine(err)}`, err);
    }
    // Another process (or a concurrent call) created the CA first; its ca.pem follows its key within
    // milliseconds, so give it a moment and use that CA.
    await delay(RACE_WAIT_MS);
    return loadExisting(paths, await readBoth(paths));
  }
  // Read back through the same checks as a loaded CA, so both paths yield identical objects.
  return parseCa(paths, certPem, keyPem);
}

function loadExisting(paths: CaPaths, files: { certPem: string | undefined; keyPem: string | undefined }): CertificateAuthority {
  const { certPem, keyPem } = files;
  if (certPem === undefined || keyPem === undefined) {
    const [missing, present] = certPem === undefined ? [paths.certPath, paths.keyPath] : [paths.keyPath, paths.certPath];
    throw invalid(`${missing} is missing but ${present} exists; restore it, or move both away to create a new CA`);
  }
  return parseCa(paths, certPem, keyPem);
}

async function readBoth(paths: CaPaths): Promise<{ certPem: string | undefined; keyPem: string | undefined }> {
  const [certPem, keyPem] = await Promise.all([readIfExists(paths.certPath), readIfExists(paths.keyPath)]);
  return { certPem, keyPem };
}

function parseCa(paths: CaPaths, certFileText: string, keyPem: string): CertificateAuthority {
  const { certPath, keyPath } = paths;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certFileText);
  } catch (err) {
    throw invalid(`${certPath} is not a PEM certificate: ${firstLine(err)}`, err);
  }
  // Canonical PEM of the first certificate, so stray text in the file never reaches the bundle.
  const certPem = x509.toString();
  // Leaves are signed sha256WithRSAEncryption (leaf.ts): an EC CA imported by hand is refused here.
  if (x509.publicKey.asymmetricKeyType !== 'rsa') {
    throw invalid(`${certPath} cannot be used (keyway needs an RSA CA): it holds a ${x509.publicKey.asymmetricKeyType ?? 'unknown'} key`);
  }
  if (!x509.ca) throw invalid(`${certPath} is not a CA certificate (basicConstraints CA:false)`);
  let keyId: Buffer;
  try {
    keyId = Buffer.from(subjectKeyIdentifierOf(x509.raw) ?? keyIdFromKey(x509));
  } catch (err) {
    throw invalid(`${certPath} cannot be used: its extensions cannot be read: ${firstLine(err)}`, err);
  }

  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw invalid(`${keyPath} is not an unencrypted PEM private key: ${firstLine(err)}`, err);
  }
  if (key.asymmetricKeyType !== 'rsa') throw invalid(`${keyPath} holds a ${key.asymmetricKeyType ?? 'unknown'} key; keyway needs RSA`);
  if (!x509.checkPrivateKey(key)) throw invalid(`${keyPath} does not match the certificate in ${certPath}`);

  const notAfter = x509.validToDate;
  // Every leaf would fail verification; better to stop at start than to fail each handshake.
  if (notAfter.getTime() <= Date.now()) {
    throw invalid(`${certPath} expired on ${notAfter.toISOString()}; move ca.pem and ca-key.pem away to create a new CA, then trust it again`);
  }

  return {
    certPem,
    keyPem,
    ...paths,
    fingerprint256: x509.fingerprint256,
    notAfter,
    keyId,
    key,
  };
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (for RSA, the PKCS#1 RSAPublicKey). */
function keyIdFromKey(x509: X509Certificate): Buffer {
  return createHash('sha1')
    .update(x509.publicKey.export({ type: 'pkcs1', format: 'der' }))
    .digest();
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalid(`cannot read ${path}: ${firstLine(err)}`, err);
  }
}

function invalid(message: string, cause?: unknown): KeywayError {
  return new KeywayError('ca_invalid', message, cause === undefined ? undefined : { cause });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n', 1)[0] ?? text;
}
