// The run of an agent's own login under `keyway connect AGENT --login` (issue 86). It runs with the
// switches the agent's profile sets for every run (Claude Code's DISABLE_TELEMETRY and the rest):
// its telemetry, update checks and error reports would otherwise pass keyway during the login. An
// agent that writes more than its login beside its login file (targets.ts `ownFolder`: Claude
// Code's settings file and backups of it) logs in with its state in a private folder keyway makes
// and removes after, so a login cut short leaves nothing in the home, and a finished one leaves only
// the login file: taken from there, checked to hold keyway's placeholders, and put in its place.

import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import { replaceFile } from '../../files/atomic-write.ts';
import { at, credentialFilePath, MAX_BYTES } from './credential-file.ts';
import type { CapturedLogin, CredentialFileShape } from './targets.ts';

/**
 * The variables the login runs with: the built-in profile's `env` (`profileEnv`, given by the
 * command: profiles sit above this module) but for its paths in the home (`~/…`: where the agent
 * keeps its state, which the login leaves alone), and, given `folder`, the variable that moves the
 * agent's state set to it.
 */
export function loginEnvironment(profileEnv: Readonly<Record<string, string>>, login: CapturedLogin, folder: string | undefined): Record<string, string> {
  const env = Object.fromEntries(Object.entries(profileEnv).filter(([, value]) => !value.startsWith('~/')));
  const variable = login.file.moved?.variable;
  if (folder !== undefined && variable !== undefined) env[variable] = folder;
  return env;
}

/** Whether the login runs in a folder of its own: the agent asks for it, and a variable moves its state there. */
export function runsInOwnFolder(login: CapturedLogin): boolean {
  return login.ownFolder === true && login.file.moved !== undefined;
}

/** The login's private folder (0700, mkdtemp's), in the system's temporary folder. */
export function makeLoginFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'keyway-login-'));
}

/** Removes the folder and all the login wrote there. */
export function dropLoginFolder(folder: string): Promise<void> {
  return rm(folder, { recursive: true, force: true });
}

export type KeptLogin =
  /** `aside`: a file there before that was not JSON, moved beside it rather than lost. */
  { kept: true; path: string; aside?: string } | { kept: false; why: string };

/**
 * The login file the run left in `folder`, put in its place for the user `env` describes (HOME, or
 * the variable that moves it): only when each token in it is one of keyway's placeholders. A file
 * there already keeps the members the login did not write (Claude Code keeps an MCP server's login
 * in the same file); one that is not a JSON object is moved aside, not lost. Written atomically,
 * with the mode of the file it replaces (0600 for a new one, in a folder made 0700).
 */
export async function keepLoginFile(folder: string, shape: CredentialFileShape, env: NodeJS.ProcessEnv): Promise<KeptLogin> {
  const inside = shape.moved?.inside;
  if (inside === undefined) return { kept: false, why: 'the agent has no variable that moves its login file' };
  const fresh = await readSmall(join(folder, inside));
  if (typeof fresh !== 'string') return { kept: false, why: `the login wrote no ${inside}` };
  const json = jsonObject(fresh);
  if (json === undefined) return { kept: false, why: `the ${inside} it wrote is not a JSON object` };
  let tokens = 0;
  for (const token of shape.tokens) {
    const value = at(json, token.path);
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !mayHoldPlaceholder(value))
      return { kept: false, why: `the ${inside} it wrote holds a token keyway did not capture (${token.path.join('.')})` };
    tokens += 1;
  }
  if (tokens === 0) return { kept: false, why: `the ${inside} it wrote holds no login` };
  const path = credentialFilePath(shape, env);
  const before = await readSmall(path);
  if (before === 'other') return { kept: false, why: `${path} is there and is no login file (a folder, or over ${MAX_BYTES / 1024} KiB): left as it is` };
  if (before === undefined) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await replaceFile(path, fresh, 0o600);
    return { kept: true, path };
  }
  const mode = (await stat(path)).mode & 0o777;
  const old = jsonObject(before);
  if (old === undefined) {
    const aside = `${path}.before-keyway-login-${Date.now()}`;
    await rename(path, aside);
    await replaceFile(path, fresh, mode);
    return { kept: true, path, aside };
  }
  await replaceFile(path, JSON.stringify({ ...old, ...json }), mode);
  return { kept: true, path };
}

/** A file's text; undefined when there is none, `other` when what is there is no login file (not a file, over MAX_BYTES). */
async function readSmall(path: string): Promise<string | 'other' | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_BYTES) return 'other';
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const json = JSON.parse(text) as unknown;
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
