import { resolve } from 'node:path';
import type { Config } from '../config/index.ts';
import { readSecretRef } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { proxyUrl } from './proxy-url.ts';

/**
 * The variables that send common clients through keyway and make them trust its CA. Every CA
 * variable but NODE_EXTRA_CA_CERTS replaces the client's trust store, so those point at the bundle
 * (system CAs + keyway's), or blind-tunnelled hosts would stop verifying.
 */
export function clientEnvironment(config: Config, agent?: { id: string; key: string }): Record<string, string> {
  const url = proxyUrl(config, agent);
  const certs = resolve(config.home, 'certs');
  const bundle = resolve(certs, 'bundle.pem');
  const vars: Record<string, string> = {
    HTTPS_PROXY: url,
    https_proxy: url,
    HTTP_PROXY: url,
    http_proxy: url, // curl reads only the lowercase http_proxy
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    NODE_USE_ENV_PROXY: '1', // Node 24 uses HTTPS_PROXY only when asked
    NODE_EXTRA_CA_CERTS: resolve(certs, 'ca.pem'),
    SSL_CERT_FILE: bundle,
    REQUESTS_CA_BUNDLE: bundle,
    CURL_CA_BUNDLE: bundle,
    GIT_SSL_CAINFO: bundle,
  };
  // git sends proxy credentials only after a 407, unless told to send them up front.
  if (agent) vars['GIT_HTTP_PROXY_AUTHMETHOD'] = 'basic';
  return vars;
}

/** An agent's key for `env`/`run`: KEYWAY_AGENT_KEY, or the reference in the config. */
export function agentKeyFor(config: Config, id: string, env: NodeJS.ProcessEnv): string {
  const fromEnv = env['KEYWAY_AGENT_KEY'];
  if (fromEnv) return fromEnv;
  const configured = config.agents[id];
  if (configured) return readSecretRef(configured.key, env, config.home);
  throw new KeywayError('usage', `set KEYWAY_AGENT_KEY to agent "${id}"'s key (keyway shows it only once, at \`agents add\`)`);
}

export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
