// An agent's credential file, read and rewritten for `keyway connect AGENT --import`: a login made
// before keyway leaves real tokens there. They are found where the agent keeps them (the table's
// paths), and the file is written again with a placeholder in place of each, byte for byte
// otherwise, atomically and with the mode it had. No message quotes a value.

import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import { KeywayError } from '../../errors/index.ts';
import { replaceFile } from '../../files/atomic-write.ts';
import type { CredentialFileShape, FileToken } from './targets.ts';

/** The largest credential file read: a few KiB in every agent; more is not one. */
export const MAX_BYTES = 256 * 1024;

/** Where the file is for this user: the variable that moves it, else its place under HOME. */
export function credentialFilePath(shape: CredentialFileShape, env: NodeJS.ProcessEnv): string {
  const moved = shape.moved === undefined ? undefined : env[shape.moved.variable];
  if (shape.moved !== undefined && moved !== undefined && moved !== '') {
    if (!isAbsolute(moved)) throw new KeywayError('usage', `${shape.moved.variable} is not an absolute path: give the file with --file`);
    return join(moved, shape.moved.inside);
  }
  const home = env['HOME'];
  if (home === undefined || !isAbsolute(home)) throw new KeywayError('usage', 'HOME is not set to an absolute path: give the file with --file');
  return join(home, shape.home);
}

export interface FoundToken extends FileToken {
  readonly value: string;
}

export interface CredentialFile {
  readonly path: string;
  readonly text: string;
  readonly mode: number;
  readonly tokens: readonly FoundToken[];
  /** The access token's expiry, when the file keeps it (epoch ms). */
  readonly expiresAt: number | undefined;
}

/** Reads the file and finds its tokens; refuses one that is not the agent's sign-in, or holds keyway's placeholders already. */
export async function readCredentialFile(path: string, shape: CredentialFileShape): Promise<CredentialFile> {
  let info: Awaited<ReturnType<typeof stat>>;
  let text: string;
  try {
    info = await stat(path);
    if (!info.isFile()) throw new KeywayError('usage', `${path} is not a file`);
    if (info.size > MAX_BYTES) throw new KeywayError('usage', `${path} is over ${MAX_BYTES / 1024} KiB: not a credential file`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof KeywayError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new KeywayError('usage', `cannot read ${path} (${code === 'ENOENT' ? 'no such file: log the agent in first, or give --file' : (code ?? 'error')})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeywayError('usage', `${path} is not JSON: not the agent's credential file`);
  }
  const tokens: FoundToken[] = [];
  for (const token of shape.tokens) {
    const value = at(json, token.path);
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') throw new KeywayError('usage', `${path}: ${token.path.join('.')} is not a string`);
    if (mayHoldPlaceholder(value)) throw new KeywayError('conflict', `${path} holds keyway placeholders already: its login is keyway's`);
    tokens.push({ ...token, value });
  }
  if (!tokens.some((t) => t.field === 'refresh_token')) {
    throw new KeywayError('usage', `${path} holds no refresh token, so no subscription login to import (an API key is connected with --api-key-stdin)`);
  }
  const expiry = shape.expiresAtMs === undefined ? undefined : at(json, shape.expiresAtMs);
  return { path, text, mode: info.mode & 0o777, tokens, expiresAt: typeof expiry === 'number' && Number.isFinite(expiry) ? expiry : undefined };
}

/**
 * The file's text with each token replaced by its placeholder where it is written (a JSON string),
 * checked: each path holds its placeholder after, and no real value is left anywhere in it.
 */
export function withPlaceholders(file: CredentialFile, placeholders: ReadonlyMap<string, string>): string {
  let text = file.text;
  for (const [real, placeholder] of placeholders) text = text.split(jsonString(real)).join(jsonString(placeholder));
  const json = JSON.parse(text) as unknown;
  for (const token of file.tokens) {
    if (at(json, token.path) !== placeholders.get(token.value)) throw unswappable(file.path, token.path.join('.'));
  }
  for (const real of placeholders.keys()) if (text.includes(real)) throw unswappable(file.path, 'a token written a second time');
  return text;
}

/** Writes the new text in place of the file: another reader sees the old file or the new, never half. */
export async function rewriteCredentialFile(file: CredentialFile, text: string): Promise<void> {
  await replaceFile(file.path, text, file.mode);
}

/** A token written some way a plain replacement misses (escaped otherwise): refused before anything changes. */
function unswappable(path: string, where: string): KeywayError {
  return new KeywayError('usage', `${path}: ${where} is written in a way keyway does not rewrite; nothing was imported`);
}

/** A string as JSON writes it inside quotes. */
function jsonString(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/** The value at `path` in parsed JSON, or undefined where a member on the way is missing. */
export function at(json: unknown, path: readonly string[]): unknown {
  let here = json;
  for (const name of path) {
    if (typeof here !== 'object' || here === null || Array.isArray(here) || !Object.hasOwn(here, name)) return undefined;
    here = (here as Record<string, unknown>)[name];
  }
  return here;
}
