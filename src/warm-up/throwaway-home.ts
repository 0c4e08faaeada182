// The warm-up's home (warm-up.ts): a new folder under the system's temp folder, 0700, holding a CA
// made for it and its config; removed when the warm-up ends. Homes left by a warm-up that was killed
// (SIGKILL, a power cut) are removed by the next one once they are ten minutes old: they hold only
// that throwaway CA, a store under a key that is gone, and audit lines of the warm-up's own requests.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCaPem } from '../tls/ca-create.ts';
import { warmUpConfigText } from './warm-up-config.ts';

const HOME_PREFIX = 'keyway-warm-up-';
const STALE_MS = 10 * 60_000;

export interface ThrowawayHome {
  path: string;
  caPem: string;
  remove(): void;
}

export async function makeThrowawayHome(): Promise<ThrowawayHome> {
  removeStaleHomes();
  const path = mkdtempSync(join(tmpdir(), HOME_PREFIX));
  const remove = () => rmSync(path, { recursive: true, force: true });
  try {
    // One CA for both ends: keyway's own (it mints the client-side leaf) and the upstream's issuer.
    const ca = await createCaPem();
    mkdirSync(join(path, 'certs'), { mode: 0o700 });
    mkdirSync(join(path, 'config'), { mode: 0o700 });
    const caPath = join(path, 'certs', 'ca.pem');
    writeFileSync(caPath, ca.certPem, { mode: 0o644 });
    writeFileSync(join(path, 'certs', 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    writeFileSync(join(path, 'config', 'keyway.yaml'), warmUpConfigText(caPath), { mode: 0o600 });
    return { path, caPem: ca.certPem, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** Throwaway homes of this user's warm-ups that were killed before they could remove their own. */
function removeStaleHomes(): void {
  const uid = process.getuid?.();
  try {
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith(HOME_PREFIX)) continue;
      const path = join(tmpdir(), name);
      const st = lstatSync(path);
      if (st.isDirectory() && (uid === undefined || st.uid === uid) && Date.now() - st.mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
    }
  } catch {
    // A temp folder that cannot be listed: nothing to sweep.
  }
}
