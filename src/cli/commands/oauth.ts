import { clientMetadataUrlOk } from '../../config/schema/config.ts';
import { clientMetadataDocument } from '../../oauth/client-metadata.ts';
import { buildConsentUrl } from '../../oauth/consent-url.ts';
import { createPkce, createState } from '../../oauth/pkce.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson, usageError } from '../io.ts';

export const oauth: Command = {
  name: 'oauth',
  usage: `keyway oauth setup --provider P --auth-url U --client-id C --redirect-uri R --scope S [--scope S…] [--state X]
keyway oauth client-metadata URL

client-metadata: prints keyway's OAuth Client ID Metadata Document for URL, the https address where
you will host it (its client_id is that URL). Host it there as application/json, then set
oauth.client_metadata_url: URL, and \`keyway connect --mcp\` signs in with it wherever the
authorization server takes metadata documents (the MCP spec's way since 2026-07-28).

setup: prints the authorization URL (response_type=code, PKCE S256, state) on stdout, and the PKCE
code_verifier and state on stderr: the code the provider returns must be exchanged with that
verifier. Store the resulting tokens with \`keyway secrets set\`.`,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        provider: { type: 'string' },
        'auth-url': { type: 'string' },
        'client-id': { type: 'string' },
        'redirect-uri': { type: 'string' },
        scope: { type: 'string', multiple: true },
        state: { type: 'string' },
      },
      { setup: 0, 'client-metadata': 1 },
    );
    if (args.positionals[0] === 'client-metadata') {
      const url = args.positionals[1];
      if (url === undefined || args.positionals.length > 2) throw usageError('usage: keyway oauth client-metadata URL');
      if (!clientMetadataUrlOk(url))
        throw usageError(`${JSON.stringify(url.slice(0, 100))}: expected the https:// URL (with a path) where the document will be hosted`);
      io.out(JSON.stringify(clientMetadataDocument(url), null, 2));
      return 0;
    }
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
