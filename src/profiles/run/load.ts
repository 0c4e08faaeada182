import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { describeIssues } from '../../config/messages.ts';
import { deepFreeze } from '../../deep-freeze.ts';
import { KeywayError } from '../../errors/index.ts';
import { BUILTIN_PROFILES } from './builtin/index.ts';
import { type Profile, PROFILE_NAME, profileSchema } from './schema.ts';

// Where profiles come from: the built-ins keyway ships (builtin/) and the user's own, one YAML file
// each in keyway's home (`profiles/NAME.yaml`). A user's file named as a built-in is that profile
// from then on (a built-in a person needs to change, say a host the agent has started to call): it
// overrides the built-in, and every command that uses or lists it says so. A file that does not
// parse is a one-line error naming the file and the key, never a crash, never skipped in silence.

export interface LoadedProfile {
  name: string;
  profile: Profile;
  /** builtin, or the user's file (and whether it stands in for a built-in of that name). */
  source: { kind: 'builtin' } | { kind: 'file'; path: string; overrides: boolean };
}

/** The largest profile file read: a profile is a few dozen lines. */
const MAX_BYTES = 64 * 1024;

export function profilesDir(home: string): string {
  return join(home, 'profiles');
}

/** A name as `--profile` takes it, or a usage error saying what one is. */
export function checkProfileName(name: string): void {
  if (!PROFILE_NAME.test(name)) throw new KeywayError('usage', `profile "${name}": a profile's name is a-z, 0-9 and -, starting with a letter or digit`);
}

/** The profile `name`: the user's file when there is one, else the built-in; a usage error when neither. */
export function findProfile(home: string, name: string): LoadedProfile {
  checkProfileName(name);
  const path = join(profilesDir(home), `${name}.yaml`);
  const text = readProfileFile(path);
  const builtin = BUILTIN_PROFILES[name];
  if (text !== undefined) return { name, profile: parseProfile(text, path), source: { kind: 'file', path, overrides: builtin !== undefined } };
  if (builtin !== undefined) return { name, profile: builtinProfile(name), source: { kind: 'builtin' } };
  const known = listProfiles(home).profiles.map((p) => p.name);
  throw new KeywayError('usage', `no profile "${name}" (profiles: ${known.join(', ')}; a profile of your own is ${path})`);
}

/** Every profile, by name; the files that do not parse each as one problem line (`FILE: why`). */
export function listProfiles(home: string): { profiles: LoadedProfile[]; problems: string[] } {
  const found = new Map<string, LoadedProfile>();
  for (const name of Object.keys(BUILTIN_PROFILES)) found.set(name, { name, profile: builtinProfile(name), source: { kind: 'builtin' } });
  const problems: string[] = [];
  for (const file of userFiles(home)) {
    const path = join(profilesDir(home), file);
    const name = file.slice(0, -'.yaml'.length);
    if (!PROFILE_NAME.test(name)) {
      problems.push(`${path}: not a profile's name (a-z, 0-9 and -, starting with a letter or digit): rename it NAME.yaml`);
      continue;
    }
    try {
      const text = readProfileFile(path);
      if (text === undefined) continue;
      found.set(name, { name, profile: parseProfile(text, path), source: { kind: 'file', path, overrides: BUILTIN_PROFILES[name] !== undefined } });
    } catch (err) {
      if (!(err instanceof KeywayError)) throw err;
      problems.push(err.message);
    }
  }
  return { profiles: [...found.values()].sort((a, b) => a.name.localeCompare(b.name)), problems };
}

function userFiles(home: string): string[] {
  try {
    return readdirSync(profilesDir(home))
      .filter((file) => file.endsWith('.yaml'))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new KeywayError('config_invalid', `cannot read ${profilesDir(home)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The file's text, or undefined when there is none. A FIFO or device is refused without being read
 * (opened without blocking, then looked at): reading one would wait for ever, or read without end.
 */
function readProfileFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeywayError('config_invalid', `${path}: cannot be read (${code ?? (err as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new KeywayError('config_invalid', `${path}: not a regular file`);
    if (stat.size > MAX_BYTES) throw new KeywayError('config_invalid', `${path}: ${stat.size} bytes; a profile is at most ${MAX_BYTES}`);
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** A profile's YAML, validated; `path` names it in every error. */
export function parseProfile(text: string, path: string): Profile {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0]?.line ?? '?'}` : '';
    // The parser's reason without its excerpt of the file.
    const reason = err instanceof YAMLParseError ? (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').trim() : '';
    throw new KeywayError('config_invalid', `${path}${where}: not valid YAML${reason ? ` (${reason})` : ''}`);
  }
  return validate(raw, path);
}

function validate(raw: unknown, where: string): Profile {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new KeywayError('config_invalid', `${where}: expected a map of keys (command:, hosts:, …)`);
  const result = profileSchema.safeParse(raw);
  if (!result.success) {
    const problems = describeIssues(result.error.issues, raw, profileSchema);
    throw new KeywayError('config_invalid', `${where}: ${problems.length === 1 ? problems[0] : problems.join('; ')}`);
  }
  return deepFreeze(result.data);
}

function builtinProfile(name: string): Profile {
  return validate(BUILTIN_PROFILES[name], `built-in profile ${name}`);
}
