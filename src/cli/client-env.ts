import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config, DomainPattern } from '../config/index.ts';
import { parseDomainPattern, readSecretRef } from '../config/index.ts';
import { ENV_PLACEHOLDER, envPlaceholder, grantPlaceholder } from '../credentials/body-swap/index.ts';
import { findPreset } from '../credentials/providers/presets.ts';
import type { CredentialStore } from '../credentials/store/credential-store.ts';
import { captureHostsOf, type StoredListing, storedListing } from '../credentials/stored-listing.ts';
import { KeywayError } from '../errors/index.ts';
import { keywayPaths } from '../paths.ts';
import { patternMatches } from '../policy/domains.ts';
import { proxyUrl } from './proxy-url.ts';
import { LOOPBACK_NO_PROXY } from './no-proxy.ts';

/**
 * The variables that send common clients through keyway and make them trust its CA. Every CA
 * variable but NODE_EXTRA_CA_CERTS replaces the client's trust store, so those point at the bundle
 * (system CAs + keyway's), or blind-tunnelled hosts would stop verifying.
 */
/** The variables that replace a client's trust store: system CAs plus keyway's (bundle.pem). */
export const BUNDLE_VARIABLES = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'] as const;
/** Every variable that names a CA file: Node's (keyway's CA alone, added to its roots) and the bundle ones. */
export const CA_VARIABLES = ['NODE_EXTRA_CA_CERTS', ...BUNDLE_VARIABLES] as const;

/** `files`: where the CA and bundle are for the client (keyway service's share), else the home's certs/. */
export function clientEnvironment(
  config: Config,
  agent?: { id: string; key: string },
  proxyAddress?: string,
  files: { ca: string; bundle: string } = { ca: resolve(config.home, 'certs', 'ca.pem'), bundle: resolve(config.home, 'certs', 'bundle.pem') },
): Record<string, string> {
  // proxyAddress (HOST:PORT) replaces proxy.listen, for a proxy started with --listen (doctor --proxy).
  const auth = agent ? `${encodeURIComponent(agent.id)}:${encodeURIComponent(agent.key)}@` : '';
  const url = proxyAddress === undefined ? proxyUrl(config, agent) : `http://${auth}${proxyAddress}`;
  const vars: Record<string, string> = {
    HTTPS_PROXY: url,
    https_proxy: url,
    HTTP_PROXY: url,
    http_proxy: url, // curl reads only the lowercase http_proxy
    NO_PROXY: LOOPBACK_NO_PROXY,
    no_proxy: LOOPBACK_NO_PROXY,
    NODE_USE_ENV_PROXY: '1', // Node 24 uses HTTPS_PROXY only when asked
    NODE_EXTRA_CA_CERTS: files.ca,
    ...Object.fromEntries(BUNDLE_VARIABLES.map((name) => [name, files.bundle])),
  };
  // git sends proxy credentials only after a 407, unless told to send them up front.
  if (agent) vars['GIT_HTTP_PROXY_AUTHMETHOD'] = 'basic';
  return vars;
}

/**
 * Refuses when the CA or the bundle is not where the variables would point: before the first
 * `keyway init` or `keyway start` on this home, or after the files were removed.
 */
export function checkCaFiles(config: Config): void {
  const certs = resolve(config.home, 'certs');
  const missing = ['ca.pem', 'bundle.pem'].filter((name) => !existsSync(resolve(certs, name)));
  if (missing.length === 0) return;
  throw new KeywayError('not_found', `no CA yet in ${certs} (${missing.join(', ')} missing): run \`keyway init\` or \`keyway start\` on this home first`);
}

/** An agent's key for `env`/`run`: KEYWAY_AGENT_KEY, or the reference in the config. */
export function agentKeyFor(config: Config, id: string, env: NodeJS.ProcessEnv): string {
  const fromEnv = env['KEYWAY_AGENT_KEY'];
  if (fromEnv) return fromEnv;
  const configured = config.agents[id];
  if (configured?.key !== undefined) return readSecretRef(configured.key, env, config.home);
  if (configured)
    throw new KeywayError('usage', `agent "${id}" has no key: it signs in with an identity token (identities:), sent as the proxy password jwt:TOKEN`);
  throw new KeywayError('usage', `set KEYWAY_AGENT_KEY to agent "${id}"'s key (keyway shows it only once, at \`agents add\`)`);
}

export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

// ---- placeholders ------------------------------------------------------------------------------
// Many SDKs refuse to start without an API key in their usual variable. keyway replaces whatever
// credential a request carries, so the agent gets a placeholder there, never the secret.

/** `keyway-placeholder`: one constant with the body placeholders' prefix (credentials/body-swap). */
export const PLACEHOLDER = ENV_PLACEHOLDER;

/**
 * Well-known API hosts and the variables their SDKs and CLIs read for a static key or token, for
 * `api_key` and `bearer` grants (OAuth grants get their provider preset's `env_names`).
 */
export const HOST_ENV_NAMES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'api.openai.com': ['OPENAI_API_KEY'],
  'api.anthropic.com': ['ANTHROPIC_API_KEY'],
  'api.github.com': ['GITHUB_TOKEN', 'GH_TOKEN'],
  'gitlab.com': ['GITLAB_TOKEN'],
  'api.mistral.ai': ['MISTRAL_API_KEY'],
  'generativelanguage.googleapis.com': ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
  'api.groq.com': ['GROQ_API_KEY'],
  'api.stripe.com': ['STRIPE_API_KEY'],
  'api.cohere.com': ['CO_API_KEY', 'COHERE_API_KEY'],
  'api.together.xyz': ['TOGETHER_API_KEY'],
  'api.deepseek.com': ['DEEPSEEK_API_KEY'],
  'api.x.ai': ['XAI_API_KEY'],
  'openrouter.ai': ['OPENROUTER_API_KEY'],
  'api.fireworks.ai': ['FIREWORKS_API_KEY'],
  'api.perplexity.ai': ['PERPLEXITY_API_KEY'],
  'api.replicate.com': ['REPLICATE_API_TOKEN'],
  'huggingface.co': ['HF_TOKEN'],
  'api.elevenlabs.io': ['ELEVENLABS_API_KEY'],
  'api.linear.app': ['LINEAR_API_KEY'],
  'api.notion.com': ['NOTION_TOKEN'],
  'api.sendgrid.com': ['SENDGRID_API_KEY'],
});

/** What placeholders need to know about a grant: never its secret. */
export interface PlaceholderGrant {
  id: string;
  type: string;
  domains: readonly string[];
  provider?: string | undefined;
  /** inject: {body: true}: the agent writes keyway-placeholder-<id> where the secret goes in a body. */
  body?: boolean | undefined;
  /** login_capture: the token endpoints' hosts, which keyway intercepts for the grant too (doctor --profile). */
  captureHosts?: readonly string[] | undefined;
}

/** The placeholder variable names for these grants, sorted. */
export function placeholderNames(grants: readonly PlaceholderGrant[]): string[] {
  const names = new Set<string>();
  for (const grant of grants) {
    const preset = grant.provider === undefined ? undefined : findPreset(grant.provider);
    for (const name of preset?.preset.env_names ?? []) names.add(name);
    // The AWS SDKs and CLI sign every request themselves and will not start without a key: they get
    // a placeholder one, and keyway signs again with the real key (credentials/types/aws_sigv4/signing/).
    if (grant.type === 'aws_sigv4') for (const name of AWS_KEY_NAMES) names.add(name);
    if (grant.type !== 'api_key' && grant.type !== 'bearer') continue;
    const patterns = grant.domains.map(parseDomainPattern).filter((p): p is DomainPattern => typeof p !== 'string');
    for (const [host, vars] of Object.entries(HOST_ENV_NAMES)) {
      if (patterns.some((p) => patternMatches(p, host, 443))) for (const name of vars) names.add(name);
    }
  }
  return [...names].sort();
}

export interface AgentView {
  /** The grants the agent may use (every grant when no agent was named). */
  grants: PlaceholderGrant[];
  /** Agents exist (config or store), so a client without agent credentials gets 407. */
  agentsConfigured: boolean;
  /** The agent named is in neither the config nor the store (known only when the store could be read or there is none), and the ids there are. */
  unknownAgent?: { known: string[] } | undefined;
}

/**
 * The grants an agent may use (every grant when `agentId` is undefined), from the config and, when
 * it can be opened without side effects, the store, and whether any agent is configured there.
 * Revoked grants are left out. `warn` hears why the store was not read, if it exists and could not be.
 */
export async function grantsForAgent(
  config: Config,
  agentId: string | undefined,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
  listed?: StoredListing,
): Promise<AgentView> {
  const grants = new Map<string, PlaceholderGrant>();
  for (const [id, g] of Object.entries(config.grants))
    grants.set(id, {
      id,
      type: g.type,
      domains: g.domains.map((d) => d.text),
      provider: g.provider,
      body: g.inject?.body !== undefined && g.inject.body !== false,
      captureHosts: captureHostsOf(g as { type: string; capture?: unknown }),
    });
  let allowed: readonly string[] | undefined = agentId === undefined ? undefined : config.agents[agentId]?.grants;
  let agentKnown = agentId === undefined || config.agents[agentId] !== undefined;
  let agentsConfigured = Object.keys(config.agents).length > 0;
  // `listed`: the running keyway's answer (cli/door-view.ts); else the store, opened here if it can be.
  const stored = listed ?? (await readStoreQuietly(config, env, warn));
  const known = new Set(Object.keys(config.agents));
  // Whether every agent is known here: the store was read, or there is none to read.
  const allSeen = stored !== undefined || (config.store.backend !== 'postgres' && !existsSync(keywayPaths(config).store));
  if (stored !== undefined) {
    agentsConfigured ||= stored.agents.length > 0;
    for (const a of stored.agents) known.add(a.id);
    for (const g of stored.grants) {
      if (config.grants[g.id] !== undefined) continue;
      grants.set(g.id, { id: g.id, type: g.type, domains: g.domains, provider: g.provider, body: g.body, captureHosts: g.captureHosts });
    }
    const agent = agentId !== undefined && !agentKnown ? stored.agents.find((a) => a.id === agentId) : undefined;
    if (agent !== undefined) {
      agentKnown = true;
      allowed = agent.grants;
    }
  }
  if (!agentKnown) return { grants: [], agentsConfigured, unknownAgent: allSeen ? { known: [...known].sort() } : undefined };
  const all = [...grants.values()];
  return { grants: allowed === undefined ? all : all.filter((g) => allowed.includes(g.id)), agentsConfigured };
}

/** The store's listing, if it can be opened without side effects (openStoreQuietly). */
async function readStoreQuietly(config: Config, env: NodeJS.ProcessEnv, warn: (message: string) => void): Promise<StoredListing | undefined> {
  const store = await openStoreQuietly(config, env, warn);
  if (store === undefined) return undefined;
  try {
    return storedListing(store);
  } finally {
    if (store.end) await store.end();
    else store.close();
  }
}

/**
 * Opens the store only if it exists and its key is at hand (KEYWAY_MASTER_KEY, KEYWAY_MASTER_KEY_FILE
 * or data/master.key): printing variables must never create a store or generate a key.
 */
async function openStoreQuietly(config: Config, env: NodeJS.ProcessEnv, warn: (message: string) => void): Promise<CredentialStore | undefined> {
  const paths = keywayPaths(config);
  const onDatabase = config.store.backend === 'postgres' && config.store.url !== undefined;
  if (!onDatabase && !existsSync(paths.store)) return undefined;
  // Loaded here: a run the running keyway answered for never opens the store.
  const [{ wrappedKeyPath }, { existingDatabaseKey, keyInDatabase }, { loadMasterKey, MASTER_KEY_FILENAME, PostgresStore, Store }] = await Promise.all([
    import('../credentials/store/key-wrap.ts'),
    import('../credentials/store/postgres-key.ts'),
    import('../credentials/store/index.ts'),
  ]);
  // A database whose key a KMS wraps keeps that key itself: read it, never make one.
  if (onDatabase && config.store.url && config.store.key !== 'file' && keyInDatabase(config, env)) {
    try {
      const url = readSecretRef(config.store.url, env, config.home);
      const key = await existingDatabaseKey(url, config.store.key, env);
      if (key === undefined) {
        warn('placeholders for grants in the store skipped: the database has no master key yet (keyway start makes it)');
        return undefined;
      }
      return await PostgresStore.open(url, key);
    } catch (err) {
      warn(`placeholders for grants in the store skipped: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
  }
  const keyAtHand =
    env['KEYWAY_MASTER_KEY'] !== undefined ||
    env['KEYWAY_MASTER_KEY_FILE'] !== undefined ||
    existsSync(resolve(paths.dataDir, MASTER_KEY_FILENAME)) ||
    existsSync(wrappedKeyPath(paths.dataDir));
  if (!keyAtHand) {
    warn('placeholders for grants in the store skipped: no master key (set KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE)');
    return undefined;
  }
  try {
    const { key } = await loadMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key });
    if (onDatabase && config.store.url) return await PostgresStore.open(readSecretRef(config.store.url, env, config.home), key);
    return await Store.open(paths.store, key);
  } catch (err) {
    warn(`placeholders for grants in the store skipped: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

const AWS_KEY_NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

/** The AWS CLI, boto3 and the SDKs trust only AWS_CA_BUNDLE: the bundle, when an aws_sigv4 grant is usable. */
export function awsCaVariables(config: Config, grants: readonly PlaceholderGrant[]): Record<string, string> {
  return grants.some((g) => g.type === 'aws_sigv4') ? { AWS_CA_BUNDLE: resolve(config.home, 'certs', 'bundle.pem') } : {};
}

/**
 * `NAME=keyway-placeholder` for each well-known variable of these grants, and for each grant that
 * swaps its placeholder in bodies, `KEYWAY_PLACEHOLDER_<ID>=keyway-placeholder-<id>` (the id in
 * capitals, '-' as '_'): the text an agent writes where that grant's secret goes in a body or message.
 */
export function placeholderVariables(grants: readonly PlaceholderGrant[]): Record<string, string> {
  const vars: Record<string, string> = Object.fromEntries(placeholderNames(grants).map((name) => [name, envPlaceholder(name)]));
  for (const grant of grants) if (grant.body) vars[bodyPlaceholderName(grant.id)] = grantPlaceholder(grant.id);
  return vars;
}

export function bodyPlaceholderName(grantId: string): string {
  return `KEYWAY_PLACEHOLDER_${grantId.toUpperCase().replace(/-/g, '_')}`;
}
