import { spawn } from 'node:child_process';
import { GRANT_ID, parseDuration } from '../../config/index.ts';
import { parseArgs } from 'node:util';
import { PROVIDER_PRESETS } from '../../credentials/providers/presets.ts';
import { findProvider, providerNames } from '../../credentials/providers/provider-registry.ts';
import { requestToken, type TokenEndpoint, type TokenSet } from '../../credentials/providers/token-endpoint.ts';
import { KeywayError } from '../../errors/index.ts';
import { buildConsentUrl } from '../../oauth/consent-url.ts';
import { pollDeviceToken, startDeviceAuthorization } from '../../oauth/device-flow.ts';
import { startLoopbackCallback } from '../../oauth/loopback-callback.ts';
import { createPkce, createState } from '../../oauth/pkce.ts';
import { saveConnectedGrant } from '../../oauth/save-grant.ts';
import { parseDomainPatternStrict } from '../../config/domain-breadth.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import { Args, parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor, endpointDispatcher, servicesFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { overlapWarnings } from '../../operations/grant-input.ts';

export const connect: Command = {
  name: 'connect',
  usage: `keyway connect PROVIDER [--grant ID] [--scopes S,…] [--domains D,…] [--device]
                       [--client-id C] [--client-secret-stdin] [--no-browser] [--timeout 5m]

Runs the provider's OAuth flow with keyway's client for it (providers.NAME.client_id in the config)
or --client-id: the authorization code with PKCE and a loopback redirect on 127.0.0.1, or with
--device the device-code flow (RFC 8628). The tokens are stored in grant ID (default: the provider's
name), which then injects on the provider's domains (or --domains).
PROVIDER is a built-in preset or one from the config (providers:), listed below.`,
  async help(argv, io) {
    return `${this.usage}\n\n${providerHelp(argv, io)}`;
  },
  async run(argv, io) {
    const args = parse(argv, {
      grant: { type: 'string' },
      scopes: { type: 'string' },
      domains: { type: 'string' },
      device: { type: 'boolean' },
      'client-id': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' },
      'no-browser': { type: 'boolean' },
      timeout: { type: 'string' },
    });
    const [name] = args.positionals;
    const services = await servicesFor(args, io);
    if (!name) throw usageError(`keyway connect PROVIDER; providers: ${providerNames(services.config).join(', ')}`);
    const provider = findProvider(services.config, name, io.env);
    if (!provider) throw usageError(`unknown provider "${name}"; providers: ${providerNames(services.config).join(', ')}`);
    const grantId = args.string('grant') ?? provider.slug;
    if (!GRANT_ID.test(grantId)) throw usageError(`--grant "${grantId}": expected a-z, 0-9 and -, up to 63 characters`);
    if (services.config.grants[grantId]) throw new KeywayError('conflict', `grant "${grantId}" is defined in the config; choose another --grant`);
    const clientId = args.string('client-id') ?? provider.clientId;
    if (!clientId)
      throw usageError(
        `no OAuth client for ${provider.slug}: pass --client-id (and --client-secret-stdin), or set providers.${provider.slug}.client_id in the config`,
      );
    const clientSecret = args.flag('client-secret-stdin') ? (await io.readStdin()).trim() : args.string('client-id') ? undefined : provider.clientSecret;
    if (clientSecret === '') throw usageError('--client-secret-stdin: the client secret read from stdin is empty');
    const scopes = args.list('scopes') ?? [...provider.scopes];
    const domains = args.list('domains') ?? [...provider.domains];
    if (domains.length === 0) throw usageError(`provider ${provider.slug} names no API domains: pass --domains`);
    for (const d of domains) if (typeof parseDomainPatternStrict(d) === 'string') throw usageError(`--domains: ${String(parseDomainPatternStrict(d))}`);
    const timeoutMs = parseDuration(args.string('timeout') ?? '5m');
    if (timeoutMs === undefined) throw usageError('--timeout: expected a duration such as 5m');

    const endpoint: TokenEndpoint = {
      tokenUrl: provider.tokenUrl,
      refreshUrl: provider.refreshUrl,
      clientId,
      clientSecret,
      clientAuth: provider.clientAuth,
      bodyFormat: provider.tokenBody,
      extraParams: provider.extraParams,
    };
    const dispatcher = endpointDispatcher(services.config);
    try {
      let tokens: TokenSet;
      if (args.flag('device')) {
        if (!provider.deviceAuthorizationUrl) throw usageError(`provider ${provider.slug} has no device authorization endpoint; connect without --device`);
        const device = await startDeviceAuthorization(provider.deviceAuthorizationUrl, endpoint, scopes, dispatcher);
        io.err(`To connect ${provider.slug}, open ${device.verificationUriComplete ?? device.verificationUri} and enter the code: ${device.userCode}`);
        tokens = await pollDeviceToken(
          endpoint,
          { ...device, expiresAt: Math.min(device.expiresAt, Date.now() + timeoutMs) },
          { dispatcher, timeoutMs: services.config.oauth.token_timeout },
        );
      } else {
        if (!provider.authorizeUrl) throw usageError(`provider ${provider.slug} has no authorization endpoint; try --device`);
        tokens = await authorizationCodeFlow(io, {
          authorizeUrl: provider.authorizeUrl,
          endpoint,
          clientId,
          scopes,
          scopeSeparator: provider.scopeSeparator,
          extraParams: provider.authorizeParams,
          port: provider.redirectPort,
          timeoutMs,
          openBrowser: !args.flag('no-browser'),
          dispatcher,
          tokenTimeoutMs: services.config.oauth.token_timeout,
        });
      }
      const others = listGrants(services);
      const saved = await saveConnectedGrant(services.store, { id: grantId, type: 'oauth2', provider: provider.slug, domains, clientId, clientSecret, tokens });
      const result = {
        grant: saved.id,
        provider: provider.slug,
        domains: saved.domains,
        scopes: tokens.scopes ?? scopes,
        refresh_token: tokens.refreshToken ? 'stored' : 'none',
        token_expires_at: tokens.expiresAt ? new Date(tokens.expiresAt).toISOString() : null,
      };
      if (args.json) printJson(io, result);
      else
        io.out(
          `connected ${provider.slug} as grant ${saved.id} (${saved.domains.join(', ')}; refresh token ${result.refresh_token}${result.token_expires_at ? `; token expires ${result.token_expires_at}` : ''})`,
        );
      for (const line of overlapWarnings(saved.id, saved.domains, others)) io.err(line);
      return 0;
    } finally {
      await dispatcher.close();
    }
  },
};

/**
 * The providers `connect` accepts here: every preset and the config's own. The config is read
 * leniently: a help screen must show even when the config has an error (which is then named).
 */
function providerHelp(argv: string[], io: CommandIO): string {
  const presets = Object.keys(PROVIDER_PRESETS).sort();
  let configured: string[] = [];
  let problem = '';
  try {
    const { home, config } = parseArgs({ args: argv, options: { home: { type: 'string' }, config: { type: 'string' } }, strict: false }).values;
    configured = Object.keys(configFor(new Args({ home, config }, []), io).providers).sort();
  } catch (err) {
    problem = `\n(the config could not be read for its providers: ${(err as Error).message})`;
  }
  const device = presets.filter((p) => PROVIDER_PRESETS[p]?.device_authorization_url !== undefined);
  return [
    `Built-in providers: ${presets.join(', ')}.`,
    `With --device (device code): ${device.join(', ') || 'none'}, and config providers with device_authorization_url.`,
    `From the config: ${configured.length === 0 ? 'none (add them under providers:)' : configured.join(', ')}.${problem}`,
    'Each needs an OAuth client you registered with the provider: providers.NAME.client_id in the config, or --client-id.',
  ].join('\n');
}

async function authorizationCodeFlow(
  io: CommandIO,
  o: {
    authorizeUrl: string;
    endpoint: TokenEndpoint;
    clientId: string;
    scopes: string[];
    scopeSeparator: ' ' | ',';
    extraParams: Readonly<Record<string, string>>;
    port: number | undefined;
    timeoutMs: number;
    openBrowser: boolean;
    dispatcher: import('undici').Dispatcher;
    tokenTimeoutMs: number;
  },
): Promise<TokenSet> {
  const pkce = createPkce();
  const state = createState();
  const callback = await startLoopbackCallback({ state, port: o.port, timeoutMs: o.timeoutMs });
  try {
    const url = buildConsentUrl({
      authorizeUrl: o.authorizeUrl,
      clientId: o.clientId,
      redirectUri: callback.redirectUri,
      scopes: o.scopes,
      scopeSeparator: o.scopeSeparator,
      state,
      codeChallenge: pkce.challenge,
      extraParams: o.extraParams,
    });
    io.err(`Open this URL to connect (waiting for the redirect to ${callback.redirectUri}):\n${url}`);
    if (o.openBrowser && process.stdout.isTTY) tryOpenBrowser(url);
    const code = await callback.code;
    return await requestToken(
      o.endpoint,
      { grant_type: 'authorization_code', code, redirect_uri: callback.redirectUri, code_verifier: pkce.verifier },
      { timeoutMs: o.tokenTimeoutMs, dispatcher: o.dispatcher },
    );
  } finally {
    await callback.close();
  }
}

function tryOpenBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined); // no opener: the printed URL is enough
  child.unref();
}
