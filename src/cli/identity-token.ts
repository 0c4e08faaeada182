import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { IDENTITY_USER } from '../proxy/identify/identity-user.ts';
import type { Args } from './args.ts';
import { usageError } from './io.ts';

// `--identity-token FILE` (env, run, doctor, fetch): the agent signs in with an identity token
// (config identities:), which names the agent itself, so these commands take the token in place of
// --agent: the proxy URL carries it as the password of the user `jwt` (issue 48: they knew only
// --agent, and `--agent jwt` worked only by guessing the key).

/** The proxy credentials of --identity-token FILE, or undefined without it. */
export function identityTokenCredentials(args: Args, config: Config): { id: string; key: string } | undefined {
  const file = args.string('identity-token');
  if (file === undefined) return undefined;
  if (args.string('agent') !== undefined) throw usageError('--identity-token or --agent, not both: the token names its agent');
  if (config.identities.length === 0)
    throw usageError('--identity-token: the config has no identities: (issuers whose tokens keyway takes; docs/identities.md)');
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw usageError(`--identity-token ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot be read'}`);
  }
  // Three base64url parts: what a JWT is. The token itself is never repeated.
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) throw usageError(`--identity-token ${file}: not a JWT (header.payload.signature)`);
  return { id: IDENTITY_USER, key: token };
}
