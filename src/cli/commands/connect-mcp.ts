import { GRANT_ID } from '../../config/index.ts';
import { parseDomainPatternStrict } from '../../config/domain-breadth.ts';
import type { Provider } from '../../credentials/providers/provider-registry.ts';
import { KeywayError } from '../../errors/index.ts';
import { beginAuthorization, type ConnectPlan, exchangeCode, storeConnection } from '../../oauth/connect-plan.ts';
import { clientMetadataUrlOk } from '../../config/schema/config.ts';
import { chooseClient } from '../../oauth/client-metadata.ts';
import { discoverMcpAuthorization, registerClient } from '../../oauth/mcp-discovery.ts';
import { startLoopbackCallback } from '../../oauth/loopback-callback.ts';
import { createState } from '../../oauth/pkce.ts';
import type { Services } from '../../open-home.ts';
import type { Args } from '../args.ts';
import { audited } from '../audit-change.ts';
import { endpointDispatcher } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';

/**
 * `keyway connect --mcp URL`: an MCP server that signs in with OAuth. Its authorization server is
 * found from its metadata (oauth/mcp-discovery.ts); the client is the one --client-id names, else
 * keyway's Client ID Metadata Document where the server takes one (oauth/client-metadata.ts), else one
 * keyway registers there; it runs the code flow with PKCE and `resource` (the answer's `iss` checked,
 * RFC 9207), and stores the tokens
 * as an oauth2 grant on the server's host. The authorization server's token endpoint is kept with
 * the client (the grant's secret), so the proxy refreshes the token as for any OAuth grant.
 */
export async function connectMcp(
  services: Services,
  args: Args,
  io: CommandIO,
  url: string,
  o: { timeoutMs: number; clientSecret: string | undefined; openBrowser: (url: string) => void },
): Promise<number> {
  const dispatcher = endpointDispatcher(services.config, io.env);
  try {
    const found = await discoverMcpAuthorization(url, dispatcher);
    const host = new URL(found.url);
    const grantId = args.string('grant') ?? defaultGrantId(host.hostname);
    if (!GRANT_ID.test(grantId)) throw usageError(`--grant "${grantId.slice(0, 64)}": expected a-z, 0-9 and -, up to 63 characters`);
    if (services.config.grants[grantId]) throw new KeywayError('conflict', `grant "${grantId}" is defined in the config; choose another --grant`);
    const domains = args.list('domains') ?? [host.host];
    for (const d of domains) {
      const problem = parseDomainPatternStrict(d);
      if (typeof problem === 'string') throw usageError(`--domains: ${problem}`);
    }
    const metadataUrl = args.string('client-metadata-url') ?? services.config.oauth.client_metadata_url;
    if (metadataUrl !== undefined && !clientMetadataUrlOk(metadataUrl)) {
      throw usageError(`--client-metadata-url ${JSON.stringify(metadataUrl.slice(0, 100))}: expected an https:// URL with a path`);
    }
    const state = createState();
    // RFC 9207, normative for MCP since 2026-07-28: the response must come from this issuer.
    const callback = await startLoopbackCallback({ state, timeoutMs: o.timeoutMs, issuer: { expected: found.issuer, required: found.issInResponse } });
    try {
      const choice = chooseClient(found, { clientId: args.string('client-id'), metadataUrl }, callback.redirectUri);
      let clientId: string;
      let clientSecret = choice.kind === 'given' ? o.clientSecret : undefined;
      if (choice.kind === 'register') ({ clientId, clientSecret } = await registerClient(choice.registrationUrl, callback.redirectUri, dispatcher));
      else clientId = choice.clientId;
      const resource = { resource: found.resource };
      const provider: Provider = {
        slug: 'mcp',
        source: 'config',
        authorizeUrl: found.authorizeUrl,
        tokenUrl: found.tokenUrl,
        revokeUrl: found.revokeUrl,
        deviceAuthorizationUrl: undefined,
        scopes: found.scopes,
        domains,
        clientId,
        clientSecret,
        clientAuth: clientSecret === undefined ? 'body' : 'basic',
        tokenBody: 'form',
        extraParams: resource,
        authorizeParams: resource,
        redirectPort: undefined,
        refreshUrl: undefined,
        scopeSeparator: ' ',
      };
      const plan: ConnectPlan = {
        provider,
        grantId,
        clientId,
        clientSecret,
        scopes: args.list('scopes') ?? found.scopes,
        domains,
        endpoint: { tokenUrl: found.tokenUrl, clientId, clientSecret, clientAuth: provider.clientAuth, bodyFormat: 'form', extraParams: resource },
      };
      const pending = beginAuthorization(plan, callback.redirectUri, state);
      io.err(`Open this URL to connect the MCP server ${found.url} (waiting for the redirect to ${callback.redirectUri}):\n${pending.consentUrl}`);
      o.openBrowser(pending.consentUrl);
      const code = await callback.code;
      const tokens = await exchangeCode(plan, pending, code, { dispatcher, timeoutMs: services.config.oauth.token_timeout });
      const server = { issuer: found.issuer, tokenUrl: found.tokenUrl, revokeUrl: found.revokeUrl, resource: found.resource };
      const result = await audited(services, io, { action: 'oauth.connect', grant: grantId, changed: ['tokens', 'scopes'] }, () =>
        storeConnection(services.store, plan, tokens, server, [new URL(found.url).pathname]),
      );
      if (args.json)
        printJson(io, {
          ...result,
          mcp: found.url,
          issuer: found.issuer,
          client: choice.kind === 'given' ? 'given' : choice.kind === 'document' ? 'metadata_document' : 'registered',
        });
      else
        io.out(
          `connected the MCP server ${found.url} as grant ${result.grant} (${result.domains.join(', ')}; authorization server ${found.issuer}; refresh token ${result.refresh_token})`,
        );
      return 0;
    } finally {
      await callback.close();
    }
  } finally {
    await dispatcher.close();
  }
}

/** `mcp-` and the host's first label (mcp.linear.app: mcp-linear): a grant id a person can read. */
function defaultGrantId(hostname: string): string {
  const labels = hostname
    .toLowerCase()
    .split('.')
    .filter((l) => l !== 'mcp' && l !== 'www');
  const base = (labels[0] ?? 'server').replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'server';
  return `mcp-${base}`.slice(0, 63);
}
