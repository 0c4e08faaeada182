import { runOneShotChild } from '../process/one-shot-child.ts';
import { writeBundle } from './bundle.ts';

const WRITE_TIMEOUT_MS = 15_000;

/**
 * Writes certs/bundle.pem in a one-shot child process. Node keeps what it reads from the OS store
 * for the life of the process (576 certificates here: ~4 MiB of RSS, 0.85 MiB of V8 heap), and the
 * proxy needs them only when the bundle is missing or stale (a first start without `keyway init`,
 * a new CA). Passing the roots back instead would leave their text in this heap. If the child
 * fails, the bundle is written here after all: it must be right.
 */
export async function writeBundleInChild(bundlePath: string, caCertPem: string): Promise<void> {
  try {
    if ((await runOneShotChild(import.meta.url, 'bundle-child', 'tls/bundle-child', [bundlePath, caCertPem], WRITE_TIMEOUT_MS)) === 'written') return;
  } catch {
    // Written here instead.
  }
  await writeBundle(bundlePath, caCertPem);
}
