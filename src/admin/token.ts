import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBlankSecret } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';

/**
 * The admin API token: made on first start (mode 0600), then read. A file that exists but holds
 * nothing (or only whitespace) is refused rather than regenerated: an empty token would match a
 * request with no Authorization at all, and silently replacing a token someone edited hides the
 * mistake. The one-line error says how to get a new one.
 */
export async function loadOrCreateAdminToken(path: string): Promise<string> {
  try {
    return await readToken(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  try {
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  } catch (err) {
    // Another process made it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readToken(path);
    throw err;
  }
}

// Another process creating the file (open with O_EXCL, then write) can be caught between the two
// steps, so an empty file gets a few short re-reads before it is judged empty.
const EMPTY_REREADS = 10;
const EMPTY_REREAD_MS = 20;

async function readToken(path: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const token = (await readFile(path, 'utf8')).trim();
    if (!isBlankSecret(token)) return token;
    if (attempt >= EMPTY_REREADS) break;
    await sleep(EMPTY_REREAD_MS);
  }
  throw new KeywayError('config_invalid', `the admin token file ${path} is empty; delete it and keyway makes a new token at the next start`);
}
