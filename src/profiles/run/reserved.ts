// The environment variables a profile may not set, keep or name as a key: the ones keyway itself
// sets for a run (the proxy and CA variables), keyway's own (KEYWAY_*), and those that would change
// what the agent trusts or which code it loads. A profile says how an agent runs behind keyway; it
// never turns keyway's hold on the agent's traffic off. The lists mirror what `keyway run` sets
// (cli/client-env.ts, cli/commands/env.ts): test/unit/profiles-run-reserved.test.ts keeps them in step.

/** A variable name as shells take it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Where clients look for a proxy: keyway sets them (or, contained, clears them). */
export const PROXY_VARIABLES = [
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
  'NODE_USE_ENV_PROXY',
  'GIT_HTTP_PROXY_AUTHMETHOD',
] as const;

/** Where clients look for the CA they trust: keyway points them at its own CA or bundle. */
export const KEYWAY_CA_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE'] as const;

/**
 * Variables that make a program trust another CA or none, or load code into it: a fixed value in a
 * profile would outlast the reason it was written, and an agent's own settings never need them.
 */
const TRUST_OR_CODE = new Set([
  'SSL_CERT_DIR',
  'NODE_TLS_REJECT_UNAUTHORIZED',
  'NODE_OPTIONS',
  'GIT_SSL_NO_VERIFY',
  'PYTHONHTTPSVERIFY',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'LD_AUDIT',
  // keyway works out the sandbox (where programs come from, which home the state is in) from these.
  'PATH',
  'HOME',
]);

/** What a profile does with a variable: sets it (`env`), names it as a key (`keys`), keeps the caller's (`pass_env`) or points it at keyway's CA (`ca`). */
export type VariableUse = 'env' | 'keys' | 'pass_env' | 'ca';

/** Why a profile may not use variable `name` so, or undefined where it may. */
export function reservedReason(name: string, use: VariableUse): string | undefined {
  if (name.startsWith('KEYWAY_')) return "keyway's own variable";
  if ((PROXY_VARIABLES as readonly string[]).includes(name) || /_proxy$/i.test(name)) return 'a proxy variable: keyway run sets it';
  // `ca` names the CA variables the agent honours, keyway's among them: run sets each to keyway's CA.
  if ((KEYWAY_CA_VARIABLES as readonly string[]).includes(name)) return use === 'ca' ? undefined : 'a CA variable: keyway run sets it';
  // PATH and HOME pass to a contained command anyway: keeping them changes nothing.
  if (use === 'pass_env' && (name === 'PATH' || name === 'HOME')) return undefined;
  if (name.startsWith('DYLD_') || TRUST_OR_CODE.has(name))
    return 'it changes what the agent trusts, which code it loads, or where keyway finds its programs and home';
  return undefined;
}
