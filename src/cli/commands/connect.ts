import { spawn } from 'node:child_process';
import { parseDuration } from '../../config/index.ts';
import { util } from '../../builtins.ts';
import { PROVIDER_PRESETS } from '../../credentials/providers/presets.ts';
import { findProvider, providerNames } from '../../credentials/providers/provider-registry.ts';
import type { Config } from '../../config/index.ts';
import type { TokenSet } from '../../credentials/issuing/token-endpoint.ts';
import type { Dispatcher } from '../../net/undici.ts';
import { beginAuthorization, exchangeCode, planConnect, storeConnection, type ConnectPlan } from '../../oauth/connect-plan.ts';
import { pollDeviceToken, startDeviceAuthorization } from '../../oauth/device-flow.ts';
import { startLoopbackCallback } from '../../oauth/loopback-callback.ts';
import { createState } from '../../oauth/pkce.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import { Args, parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor, endpointDispatcher, servicesFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { overlapWarnings } from '../../operations/grant-input.ts';
import { existingOAuthGrant } from '../../oauth/existing-grant.ts';
import { audited } from '../audit-change.ts';
import { connectMcp } from './connect-mcp.ts';
import { AGENT_HELP, AGENT_ONLY, AGENT_USAGE, connectAgent } from './connect-agent.ts';
import { AGENT_TARGET_NAMES, AGENT_TARGETS, isAgentTarget } from '../../profiles/connect/targets.ts';
import { closestName } from '../did-you-mean.ts';

export const connect: Command = {
  name: 'connect',
  usage: `keyway connect PROVIDER [--grant ID] [--scopes S,…] [--domains D,…] [--device]
                       [--client-id C] [--client-secret-stdin] [--no-browser] [--timeout 5m]
keyway connect --mcp URL [--grant ID] [--scopes S,…] [--domains D,…] [--client-id C]
                       [--client-metadata-url U] …
${AGENT_USAGE}

--mcp: an MCP server that signs in with OAuth (the MCP authorization spec): keyway reads its
protected resource metadata and its authorization server's, and uses --client-id if given, else its
Client ID Metadata Document where the server takes them (--client-metadata-url or
oauth.client_metadata_url: the https URL where you host what \`keyway oauth client-metadata URL\`
prints), else registers a client of its own (dynamic client registration). It runs the code flow
with PKCE for that server as the resource, and refuses an answer whose iss names another server
(RFC 9207). The grant (default mcp-NAME from the host) injects on the server's host and
is refreshed like any OAuth grant.

Runs the provider's OAuth flow with keyway's client for it (providers.NAME.client_id in the config)
or --client-id: the authorization code with PKCE and a loopback redirect on 127.0.0.1, or with
--device the device-code flow (RFC 8628). The tokens are stored in grant ID (default: the provider's
name), which then injects on the provider's domains (or --domains).
PROVIDER is a built-in preset or one from the config (providers:), listed below.

${AGENT_HELP}`,
  async help(argv, io) {
    return `${this.usage}\n\n${providerHelp(argv, io)}`;
  },
  async run(argv, io) {
    const args = parse(
      argv,
      {
        grant: { type: 'string' },
        scopes: { type: 'string' },
        domains: { type: 'string' },
        device: { type: 'boolean' },
        'client-id': { type: 'string' },
        'client-secret-stdin': { type: 'boolean' },
        'no-browser': { type: 'boolean' },
        timeout: { type: 'string' },
        mcp: { type: 'string' },
        'client-metadata-url': { type: 'string' },
        'api-key-stdin': { type: 'boolean' },
        login: { type: 'boolean' },
        watch: { type: 'boolean' },
        import: { type: 'boolean' },
        file: { type: 'string' },
        replace: { type: 'boolean' },
        agent: { type: 'string' },
        // Declared only to be refused by name: a key in argv is in `ps` and the shell's history.
        'api-key': { type: 'string' },
      },
      2,
    );
    // The value is never repeated: it may be the very key the line above keeps off the command line.
    if (args.string('api-key') !== undefined) {
      throw usageError('--api-key: a key on the command line is seen by every process (ps) and kept in shell history; pipe it in with --api-key-stdin');
    }
    if (args.positionals.length > 1)
      throw usageError('connect takes one name (a provider or an agent); a key or secret is read from stdin, never from the command line');
    const [name] = args.positionals;
    const services = await servicesFor(args, io);
    if (name !== undefined && isAgentTarget(name)) return connectAgent(services, args, io, AGENT_TARGETS[name]);
    if (name !== undefined && findProvider(services.config, name, io.env) === undefined) throw unknownName(services.config, name);
    for (const option of AGENT_ONLY) {
      if (args.flag(option) || args.string(option) !== undefined) throw usageError(`--${option} is for the coding agents (${AGENT_TARGET_NAMES.join(', ')})`);
    }
    const mcp = args.string('mcp');
    if (mcp !== undefined) {
      if (name !== undefined) throw usageError('connect --mcp URL takes no PROVIDER: the server names its own authorization server');
      if (args.flag('device')) throw usageError('connect --mcp runs the code flow; --device is for providers');
      const timeoutMs = parseDuration(args.string('timeout') ?? '5m');
      if (timeoutMs === undefined) throw usageError('--timeout: expected a duration such as 5m');
      const clientSecret = args.flag('client-secret-stdin') ? (await io.readStdin()).trim() : undefined;
      return connectMcp(services, args, io, mcp, {
        timeoutMs,
        clientSecret: clientSecret === '' ? undefined : clientSecret,
        openBrowser: (url) => {
          if (!args.flag('no-browser') && process.stdout.isTTY) tryOpenBrowser(url);
        },
      });
    }
    if (!name) throw usageError(`keyway connect PROVIDER; providers: ${providerNames(services.config).join(', ')}`);
    const clientId = args.string('client-id');
    const clientSecret = args.flag('client-secret-stdin') ? (await io.readStdin()).trim() : undefined;
    if (clientSecret === '') throw usageError('--client-secret-stdin: the client secret read from stdin is empty');
    const plan = planConnect(
      services.config,
      io.env,
      {
        provider: name,
        grant: args.string('grant'),
        scopes: args.list('scopes'),
        domains: args.list('domains'),
        clientId,
        clientSecret,
        existing: existingOAuthGrant(services.store),
      },
      (field) => (field === 'client_secret' ? '--client-secret-stdin' : `--${field.replace('_', '-')}`),
    );
    const { provider } = plan;
    const timeoutMs = parseDuration(args.string('timeout') ?? '5m');
    if (timeoutMs === undefined) throw usageError('--timeout: expected a duration such as 5m');

    const dispatcher = endpointDispatcher(services.config, io.env);
    try {
      let tokens: TokenSet;
      if (args.flag('device')) {
        if (!provider.deviceAuthorizationUrl) throw usageError(`provider ${provider.slug} has no device authorization endpoint; connect without --device`);
        const device = await startDeviceAuthorization(provider.deviceAuthorizationUrl, plan.endpoint, plan.scopes, dispatcher);
        io.err(`To connect ${provider.slug}, open ${device.verificationUriComplete ?? device.verificationUri} and enter the code: ${device.userCode}`);
        tokens = await pollDeviceToken(
          plan.endpoint,
          { ...device, expiresAt: Math.min(device.expiresAt, Date.now() + timeoutMs) },
          { dispatcher, timeoutMs: services.config.oauth.token_timeout },
        );
      } else {
        if (!provider.authorizeUrl) throw usageError(`provider ${provider.slug} has no authorization endpoint; try --device`);
        tokens = await authorizationCodeFlow(io, plan, {
          port: provider.redirectPort,
          timeoutMs,
          openBrowser: !args.flag('no-browser'),
          dispatcher,
          tokenTimeoutMs: services.config.oauth.token_timeout,
        });
      }
      const others = listGrants(services);
      // The tokens are replaced only now, once the new consent succeeded: a refused or abandoned one
      // leaves the grant as it was.
      const result = await audited(services, io, { action: 'oauth.connect', grant: plan.grantId, changed: ['tokens', 'scopes'] }, () =>
        storeConnection(services.store, plan, tokens),
      );
      if (args.json) printJson(io, result);
      else
        io.out(
          `connected ${provider.slug} as grant ${result.grant} (${result.domains.join(', ')}; refresh token ${result.refresh_token}${result.token_expires_at ? `; token expires ${result.token_expires_at}` : ''})`,
        );
      for (const line of overlapWarnings(result.grant, result.domains, others)) io.err(line);
      return 0;
    } finally {
      await dispatcher.close();
    }
  },
};

/** A name connect does not know: the nearest agent or provider, and both lists. */
function unknownName(config: Config, name: string): Error {
  const providers = providerNames(config);
  const near = closestName(name, [...AGENT_TARGET_NAMES, ...providers]);
  return usageError(
    `unknown provider or agent "${name.slice(0, 64)}"${near === undefined ? '' : `; did you mean ${near}?`} (agents: ${AGENT_TARGET_NAMES.join(', ')}; providers: ${providers.join(', ')})`,
  );
}

/**
 * The providers `connect` accepts here: every preset and the config's own. The config is read
 * leniently: a help screen must show even when the config has an error (which is then named).
 */
function providerHelp(argv: string[], io: CommandIO): string {
  const presets = Object.keys(PROVIDER_PRESETS).sort();
  let configured: string[] = [];
  let problem = '';
  try {
    const { home, config } = util.parseArgs({ args: argv, options: { home: { type: 'string' }, config: { type: 'string' } }, strict: false }).values;
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
  plan: ConnectPlan,
  o: { port: number | undefined; timeoutMs: number; openBrowser: boolean; dispatcher: Dispatcher; tokenTimeoutMs: number },
): Promise<TokenSet> {
  const state = createState();
  const callback = await startLoopbackCallback({ state, port: o.port, timeoutMs: o.timeoutMs });
  try {
    const pending = beginAuthorization(plan, callback.redirectUri, state);
    io.err(`Open this URL to connect (waiting for the redirect to ${callback.redirectUri}):\n${pending.consentUrl}`);
    if (o.openBrowser && process.stdout.isTTY) tryOpenBrowser(pending.consentUrl);
    const code = await callback.code;
    return await exchangeCode(plan, pending, code, { dispatcher: o.dispatcher, timeoutMs: o.tokenTimeoutMs });
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
