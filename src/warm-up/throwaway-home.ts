// The warm-up's homes (warm-up.ts): a new folder under the system's temp folder, 0700, holding a CA
// made for it and its config; removed when its pass ends. The folder is made (and its path known to
// the caller, for a signal's clean-up) before anything slow is done in it. Homes left by a warm-up
// that was killed (SIGKILL, a power cut) are removed by the next one once they are ten minutes old:
// they hold only that throwaway CA, a store under a key that is gone, and audit lines of the
// warm-up's own requests.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCaPem } from '../tls/ca-create.ts';
import { warmUpConfigText } from './warm-up-config.ts';

const HOME_PREFIX = 'keyway-warm-up-';
const STALE_MS = 10 * 60_000;

export interface ThrowawayHome {
  path: string;
  remove(): void;
}

/** The folder, made now (0700, by mkdtemp); nothing in it yet. Sweeps stale ones first. */
export function newThrowawayHome(): ThrowawayHome {
  removeStaleHomes();
  const path = mkdtempSync(join(tmpdir(), HOME_PREFIX));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes the home's CA and config (its agent named `agent`); returns the CA's certificate. */
export async function fillThrowawayHome(home: ThrowawayHome, agent: string): Promise<string> {
  // One CA for both ends: keyway's own (it mints the client-side leaf) and the upstream's issuer.
  const ca = await createCaPem();
  mkdirSync(join(home.path, 'certs'), { mode: 0o700 });
  mkdirSync(join(home.path, 'config'), { mode: 0o700 });
  const caPath = join(home.path, 'certs', 'ca.pem');
  writeFileSync(caPath, ca.certPem, { mode: 0o644 });
  writeFileSync(join(home.path, 'certs', 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  writeFileSync(join(home.path, 'config', 'keyway.yaml'), warmUpConfigText(caPath, agent), { mode: 0o600 });
  return ca.certPem;
}

/**
 * Throwaway homes of this user's warm-ups that were killed before they could remove their own. lstat:
 * a link of that name is not followed, and only folders this user owns are removed; each entry on its
 * own (one that another warm-up removed meanwhile does not end the sweep).
 */
function removeStaleHomes(): void {
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(HOME_PREFIX));
  } catch {
    return; // a temp folder that cannot be listed: nothing to sweep
  }
  for (const name of names) {
    try {
      const path = join(tmpdir(), name);
      const st = lstatSync(path);
      if (st.isDirectory() && (uid === undefined || st.uid === uid) && Date.now() - st.mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone already, or not ours to remove
    }
  }
}
