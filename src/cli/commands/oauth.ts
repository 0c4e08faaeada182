import { buildConsentUrl } from '../../oauth/consent-url.ts';
import { createPkce, createState } from '../../oauth/pkce.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson, usageError } from '../io.ts';

export const oauth: Command = {
  name: 'oauth',
  usage: `keyway oauth setup --provider P --auth-url U --client-id C --redirect-uri R --scope S [--scope S…] [--state X]

Prints the authorization URL (response_type=code, PKCE S256, state) on stdout, and the PKCE
code_verifier and state on stderr: the code the provider returns must be exchanged with that
verifier. Store the resulting tokens with \`keyway secrets set\`.`,
  async run(argv, io) {
    const args = parse(argv, {
      provider: { type: 'string' },
      'auth-url': { type: 'string' },
      'client-id': { type: 'string' },
      'redirect-uri': { type: 'string' },
      scope: { type: 'string', multiple: true },
      state: { type: 'string' },
    });
    if (args.positionals[0] !== 'setup') throw usageError('usage: keyway oauth setup --provider P --auth-url U --client-id C --redirect-uri R --scope S…');
    const authUrl = args.string('auth-url');
    const clientId = args.string('client-id');
    const redirectUri = args.string('redirect-uri');
    for (const [flag, value] of [
      ['--provider', args.string('provider')],
      ['--auth-url', authUrl],
      ['--client-id', clientId],
      ['--redirect-uri', redirectUri],
    ] as const) {
      if (!value) throw usageError(`${flag} is required`);
    }
    try {
      new URL(authUrl!);
      new URL(redirectUri!);
    } catch {
      throw usageError('--auth-url and --redirect-uri must be absolute URLs');
    }
    const pkce = createPkce();
    const state = args.string('state') ?? createState();
    const url = buildConsentUrl({
      authorizeUrl: authUrl!,
      clientId: clientId!,
      redirectUri: redirectUri!,
      scopes: args.strings('scope'),
      state,
      codeChallenge: pkce.challenge,
    });
    if (args.json) {
      printJson(io, { provider: args.string('provider'), url, state, code_verifier: pkce.verifier, code_challenge_method: 'S256' });
    } else {
      io.out(url);
      io.err(`state: ${state}\ncode_verifier: ${pkce.verifier}`);
    }
    return 0;
  },
};
