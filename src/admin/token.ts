import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBlankSecret } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';

// Where the admin token comes from, in order (as the master key's): KEYWAY_ADMIN_TOKEN, the file
// named by KEYWAY_ADMIN_TOKEN_FILE (a Kubernetes Secret, so a scraper can be given the same one),
// else data/admin.token, made on first start. A supplied token is never written to the home.

export const MIN_SUPPLIED_TOKEN_LENGTH = 16;
const SUPPLIED_HINT = 'e.g. `openssl rand -hex 32`';

/**
 * The admin token the proxy serves with: supplied through the environment, else data/admin.token,
 * made on first start (mode 0600). A file that exists but holds nothing (or only whitespace) is
 * refused rather than regenerated: an empty token would match a request with no Authorization at
 * all, and silently replacing a token someone edited hides the mistake.
 */
export async function loadOrCreateAdminToken(path: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const supplied = await suppliedAdminToken(env);
  if (supplied !== undefined) return supplied;
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

/**
 * The token a command sends to the running proxy: the same environment variables the proxy reads
 * (`kubectl exec` runs in the proxy's container, with its environment), else data/admin.token.
 * Never creates one. Rejects with the reason; a missing file keeps its ENOENT code.
 */
export async function readAdminToken(path: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return (await suppliedAdminToken(env)) ?? readToken(path);
}

/** The token from KEYWAY_ADMIN_TOKEN or KEYWAY_ADMIN_TOKEN_FILE, checked; undefined when neither is set. */
export async function suppliedAdminToken(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const value = env.KEYWAY_ADMIN_TOKEN;
  if (value !== undefined) return checkSupplied(value, 'KEYWAY_ADMIN_TOKEN');
  const file = env.KEYWAY_ADMIN_TOKEN_FILE;
  if (file === undefined) return undefined;
  if (isBlankSecret(file)) throw invalid('KEYWAY_ADMIN_TOKEN_FILE is set but empty; expected a file path');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalid(`KEYWAY_ADMIN_TOKEN_FILE (${file}) cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  return checkSupplied(text, `KEYWAY_ADMIN_TOKEN_FILE (${file})`);
}

/**
 * A supplied token must be usable as a bearer token and not guessable. The messages name the
 * source and what is wrong, never the value: a wrong variable often holds some other real secret.
 */
function checkSupplied(raw: string, source: string): string {
  const token = raw.trim();
  if (token === '') throw invalid(`${source} is set but empty; expected the admin token (${SUPPLIED_HINT})`);
  // A space, a tab or a line break inside would not survive an Authorization header.
  if (/[\s\p{Cc}]/u.test(token)) throw invalid(`${source} holds whitespace or control characters inside the token; expected one word (${SUPPLIED_HINT})`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw invalid(`${source} holds characters outside printable ASCII, which an HTTP header cannot carry (${SUPPLIED_HINT})`);
  if (token.length < MIN_SUPPLIED_TOKEN_LENGTH)
    throw invalid(`${source} is too short; expected at least ${MIN_SUPPLIED_TOKEN_LENGTH} characters (${SUPPLIED_HINT})`);
  return token;
}

function invalid(message: string, cause?: unknown): KeywayError {
  return new KeywayError('config_invalid', message, cause === undefined ? undefined : { cause });
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
