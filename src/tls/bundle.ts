// bundle.pem is what SSL_CERT_FILE, CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE and GIT_SSL_CAINFO point at.
// Those variables replace a client's trust store rather than add to it, so the bundle must carry the
// system's CAs too, or every host keyway only tunnels (never intercepts) would fail verification.
import { readFile } from 'node:fs/promises';
import * as tls from 'node:tls';
import { replaceFile } from '../files/atomic-write.ts';

/** The machine's trusted roots: the OS store when Node can read it, else Node's bundled Mozilla list. */
export function systemCertificates(): readonly string[] {
  try {
    // getCACertificates arrived in Node 22.15 / 23.5: always there from engines' 22.19, kept for a Node run against engines.
    if (typeof tls.getCACertificates === 'function') {
      const system = tls.getCACertificates('system');
      if (system.length > 0) return system;
    }
  } catch {
    // An unreadable OS store is not fatal: the bundled roots are a sound fallback.
  }
  return tls.rootCertificates;
}

/** How ensureBundle writes the bundle: in this process (the default), or in a child (bundle-in-child.ts). */
export type BundleWriter = (bundlePath: string, caCertPem: string) => Promise<void>;

/** Writes the bundle from the system roots read in this process. */
export async function writeBundle(bundlePath: string, caCertPem: string): Promise<void> {
  await replaceFile(bundlePath, buildBundle(caCertPem), 0o644);
}

/** The base64 body of a PEM, so the same certificate compares equal however it is wrapped. */
function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** System roots (deduplicated; the OS store lists many twice) followed by keyway's CA, last. */
export function buildBundle(caCertPem: string, roots: readonly string[] = systemCertificates()): string {
  const caBody = pemBody(caCertPem);
  const seen = new Set<string>([caBody]);
  const parts: string[] = [];
  for (const pem of roots) {
    const body = pemBody(pem);
    if (seen.has(body)) continue;
    seen.add(body);
    parts.push(pem.trim());
  }
  parts.push(caCertPem.trim());
  return `${parts.join('\n')}\n`;
}

/**
 * Write the bundle if it is missing, or if it no longer holds this CA (a bundle left from an earlier CA
 * would make every intercepted host fail). An existing, current bundle is left alone.
 */
export async function ensureBundle(bundlePath: string, caCertPem: string, write: BundleWriter = writeBundle): Promise<void> {
  let existing: string | undefined;
  try {
    existing = await readFile(bundlePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing !== undefined && pemBody(existing).includes(pemBody(caCertPem))) return;
  await write(bundlePath, caCertPem);
}
