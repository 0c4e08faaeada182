import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join, relative, sep } from 'node:path';
import { mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import { KeywayError } from '../../errors/index.ts';
import { AGENT_TARGETS, isAgentTarget } from '../connect/targets.ts';
import type { StatePath } from './state.ts';

// A profile's state under `keyway run --contain`: a folder keyway keeps for that agent and profile,
// never the person's own (`~/.claude`, `~/.codex`, `~/.gemini`). Each agent runs commands its state
// names at its next start (Claude Code's hooks, statusLine and apiKeyHelper, Codex's MCP servers and
// notify, Gemini CLI's MCP servers), so what a contained agent writes there must never reach the
// state the person's own agent reads: it is read only by later contained runs of the same agent and
// profile. Inside, the kept folder is shown where the agent looks (`~/.claude`), writable.
//
// What passes from the person's state into the kept one, and nothing else: the agent's login file
// (connect/targets.ts names it), copied when it changed since the last copy, only where each token
// in it is one of keyway's placeholders (a login keyway owns: `keyway connect AGENT --login` or
// `--import`) and no other value in it is shaped like a secret (SECRET_SHAPED). A login file with a
// real token stays where it is, and the run says how to give keyway the login. Nothing passes back.

/** Where the kept state of every profile lives in keyway's home: `profiles-state/NAME/AGENT/` (AGENT `local` without --agent). */
export const KEPT_STATE_FOLDER = 'profiles-state';

export interface KeptState {
  /** The folder or file keyway keeps. */
  source: string;
  /** Where the agent sees it inside: the profile's path in the home (`~/.claude`). */
  target: string;
  kind: 'folder' | 'file';
}

const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The kept state for each of the profile's state paths; a usage error when the agent or profile name cannot be a folder's. */
export function keptStatePlan(keywayHome: string, agent: string | undefined, profile: string, state: readonly StatePath[], home: string): KeptState[] {
  const who = agent ?? 'local';
  for (const name of [who, profile]) if (!PLAIN.test(name)) throw new KeywayError('usage', `"${name}" cannot name a folder of kept state`);
  const base = join(keywayHome, KEPT_STATE_FOLDER, profile, who);
  return state.map((s) => ({ source: join(base, ...s.given.slice(2).split('/')), target: join(home, s.given.slice(2)), kind: s.kind }));
}

/** Makes what is missing of the kept state (folders 0700, files 0600); the lines that say so. */
export function makeKeptState(kept: readonly KeptState[]): string[] {
  const said: string[] = [];
  for (const k of kept) {
    if (exists(k.source)) {
      const isFolder = lstatSync(k.source).isDirectory();
      if (isFolder !== (k.kind === 'folder') || lstatSync(k.source).isSymbolicLink())
        throw new KeywayError('usage', `kept state ${k.source} is not a ${k.kind}: move it away, and the next run starts it afresh`);
      continue;
    }
    mkdirSync(k.kind === 'folder' ? k.source : dirname(k.source), { recursive: true, mode: 0o700 });
    if (k.kind === 'file') writeFileSync(k.source, k.source.endsWith('.json') ? '{}\n' : '', { mode: 0o600, flag: 'wx' });
    said.push(`the contained agent's ${k.target} is keyway's own copy, ${k.source} (made now): what it writes there never reaches your own`);
  }
  return said;
}

/**
 * A run of letters, digits and `_+=-` of 24 or more: how API keys, tokens and passwords look (a UUID
 * is the one such shape let through: account ids). Scopes, URLs, dates, names and emails are not.
 */
const SECRET_SHAPED = /[A-Za-z0-9_+=-]{24,}/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Copies the person's login file into the kept state where it holds only keyway's placeholders; the lines for stderr. */
export function seedLogin(profile: string, home: string, kept: readonly KeptState[]): string[] {
  if (!isAgentTarget(profile)) return [];
  const login = AGENT_TARGETS[profile].login;
  if (!('file' in login) || login.file === undefined) return [];
  const own = join(home, login.file.home);
  const into = kept.find((k) => k.kind === 'folder' && isInside(own, k.target));
  if (into === undefined) return [];
  const copy = join(into.source, relative(into.target, own));
  let text: string;
  try {
    const stat = statSync(own);
    if (!stat.isFile() || stat.size > 256 * 1024) return [];
    text = readFileSync(own, 'utf8');
  } catch {
    return [];
  }
  // Copied when yours changed since the last copy, by its content, recorded beside the kept folder
  // where the agent cannot reach: the agent's own refreshed copy stays until yours changes, and no
  // time the agent sets on its copy can hold yours back.
  const record = join(dirname(into.source), `${basename(into.source)}.login-copied`);
  const digest = createHash('sha256').update(text).digest('hex');
  if (readOrEmpty(record) === digest && lstatOrUndefined(copy) !== undefined) return [];
  const why = loginRefusal(
    text,
    login.file.tokens.map((t) => t.path),
  );
  if (why !== undefined)
    return [
      `${login.credentialFile} ${why}, which a contained agent never sees: \`keyway connect ${profile} --import\` gives keyway the login, and the next contained run gets its placeholders`,
    ];
  const there = lstatOrUndefined(copy);
  if (there !== undefined && !there.isFile() && !there.isSymbolicLink())
    return [`the contained agent's ${login.credentialFile} is not a file (the agent made it so): remove ${copy} for your login to be copied there`];
  // The folder is the contained agent's to write: a name made new here (O_EXCL: never through a
  // link it planted), renamed over whatever is at \`copy\` (a link there is replaced, not followed).
  const temporary = `${copy}.keyway-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    mkdirSync(dirname(copy), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, copy);
  } catch (err) {
    rmSync(temporary, { force: true });
    return [`your ${profile} login was not copied into the contained agent's state (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`];
  }
  writeFileSync(record, digest, { mode: 0o600 });
  return [`copied your ${profile} login (keyway's placeholders) into the contained agent's state`];
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Why a login file may not be copied in, or undefined: each token a placeholder, nothing else secret-shaped. */
export function loginRefusal(text: string, tokenPaths: ReadonlyArray<readonly string[]>): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'is not JSON';
  }
  const isToken = (path: readonly string[]) => tokenPaths.some((p) => p.length === path.length && p.every((name, i) => name === path[i]));
  let problem: string | undefined;
  const walk = (value: unknown, path: string[]) => {
    if (problem !== undefined) return;
    if (typeof value === 'string') {
      if (isToken(path)) {
        if (value !== '' && !mayHoldPlaceholder(value)) problem = `holds a real token (${path.join('.')})`;
      } else if (!mayHoldPlaceholder(value) && !UUID.test(value) && SECRET_SHAPED.test(value))
        problem = `holds a value shaped like a secret (${path.join('.')})`;
    } else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, [...path, String(i)]);
    } else if (typeof value === 'object' && value !== null) for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
  };
  walk(json, []);
  return problem;
}

function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep);
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
