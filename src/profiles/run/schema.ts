import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDomainPattern } from '../../config/domain-pattern.ts';
import { messageCheck } from '../../config/grant-fields.ts';
import { ENV_NAME, reservedReason, type VariableUse } from './reserved.ts';
import { statePathProblem } from './state-path.ts';

// A profile: what one coding agent needs to run behind keyway (docs/agents/README.md documents each
// key). Built-ins (builtin/) and a user's profiles/NAME.yaml are read by this one schema, strict:
// an unknown key is refused by name, never ignored (a misspelt `pass_env` would quietly pass nothing).

/** A profile's name, as `--profile NAME` and `profiles/NAME.yaml` give it. */
export const PROFILE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A host the agent calls: a name, with a port where it is not 443; never a wildcard or an address. */
const hostName = z.string().check(
  messageCheck((text) => {
    const parsed = parseDomainPattern(text);
    if (typeof parsed === 'string') return parsed;
    if (parsed.wildcard) return `"${text}" is a wildcard: name each host the agent calls`;
    if (isIP(parsed.host) !== 0) return `"${text}" is an address: name the host`;
    return undefined;
  }),
);

const variable = (use: VariableUse) =>
  z.string().check(
    messageCheck((name) => {
      if (!ENV_NAME.test(name)) return `"${name}" is not a variable name (letters, digits and _, not starting with a digit)`;
      const reserved = reservedReason(name, use);
      // env's names are its keys, which the error's path names already.
      return reserved === undefined ? undefined : use === 'env' ? reserved : `${name}: ${reserved}`;
    }),
  );

const statePath = z.string().check(messageCheck((text) => statePathProblem(text)));

/** A host socket: an absolute path or one in the home (`~/…`), checked to be a socket when used. */
const socketPath = z.string().check(
  messageCheck((text) => {
    if (!/^(\/|~\/)[^\0]*$/.test(text)) return 'expected an absolute path or ~/PATH';
    if (text.split('/').some((part) => part === '..' || part === '.')) return 'expected a path without . or .. parts';
    return undefined;
  }),
);

/** An absolute path, or a program's name looked up on PATH. */
const commandName = z
  .string()
  .check(
    messageCheck((text) =>
      /^(\/[^\0]+|[A-Za-z0-9][A-Za-z0-9._+-]*)$/.test(text) ? undefined : 'expected a program name (looked up on PATH) or an absolute path',
    ),
  );

const hostEntry = z.strictObject({
  host: hostName,
  /** Why the agent calls it (found from the agent itself): shown by `profiles show`. */
  why: z.string().min(1, 'say why the agent calls this host'),
  /**
   * model: where its model answers (doctor checks a grant covers one of them); login: a sign-in or
   * token endpoint; off: called only while a switch is on that should be off (telemetry, update
   * checks, a marketplace): refused is as it should be; other: anything else it needs.
   */
  role: z.enum(['model', 'login', 'other', 'off']).default('other'),
});

const stateEntry = z.strictObject({
  path: statePath,
  kind: z.enum(['folder', 'file']),
});

const keyEntry = z.strictObject({
  /** The variable the agent reads its key from. */
  env: variable('keys'),
  /** The host that key is for: a placeholder is set only where a grant of the agent covers it. */
  host: hostName,
});

const profileObject = z.strictObject({
  description: z.string().default(''),
  command: commandName,
  hosts: z.array(hostEntry).default([]),
  state: z.array(stateEntry).default([]),
  keys: z.array(keyEntry).default([]),
  env: z.record(variable('env'), z.string().max(4096)).default({}),
  pass_env: z.array(variable('pass_env')).default([]),
  ca: z.array(variable('ca')).default([]),
  ports: z.array(z.number().int().min(1).max(65_535)).default([]),
  sockets: z.array(socketPath).default([]),
});

export const profileSchema = profileObject.superRefine((profile, ctx) => {
  // `env` fixes a value for every run; a key's variable gets a placeholder and a CA variable keyway's
  // CA: fixing either too would race keyway's own value.
  const keys = new Set(profile.keys.map((k) => k.env));
  const ca = new Set(profile.ca);
  for (const name of Object.keys(profile.env)) {
    if (keys.has(name)) ctx.addIssue({ code: 'custom', path: ['env', name], message: `${name} is a key's variable (keys): keyway sets its placeholder` });
    else if (ca.has(name)) ctx.addIssue({ code: 'custom', path: ['env', name], message: `${name} is a CA variable (ca): keyway sets it to its CA` });
  }
  const seen = new Set<string>();
  profile.state.forEach((entry, i) => {
    if (seen.has(entry.path)) ctx.addIssue({ code: 'custom', path: ['state', i, 'path'], message: `${entry.path} is named twice` });
    seen.add(entry.path);
  });
});

export type Profile = z.output<typeof profileSchema>;
export type ProfileHost = Profile['hosts'][number];
export type ProfileState = Profile['state'][number];
