import type { Config } from './paths.ts';

/**
 * The environment variables that hold keyway's secrets: every one the config names as a secret
 * (`env:NAME` on grants, providers, agents, the store's URL, the egress proxy), and keyway's own
 * (`KEYWAY_*`: the master key, the admin token, agent keys, the database URL). A process keyway
 * starts for someone else (a secret command, a contained agent) never gets them.
 */
export function secretVariables(config: Config): { has(name: string): boolean } {
  const named = new Set(secretVariableNames(config));
  return { has: (name) => name.startsWith('KEYWAY_') || named.has(name) };
}

/** The variables the config names as secrets (env:NAME), in the order met. */
export function secretVariableNames(config: Config): string[] {
  const named = new Set<string>();
  const note = (ref: unknown) => {
    if (typeof ref === 'object' && ref !== null && (ref as { kind?: unknown }).kind === 'env') named.add((ref as { name: string }).name);
  };
  for (const g of Object.values(config.grants)) note(g.secret);
  for (const p of Object.values(config.providers)) note(p.client_secret);
  for (const a of Object.values(config.agents)) note(a.key);
  note(config.store.url);
  note(config.egress.proxy);
  // What reaches the KMS wrapping the master key (store.key): the AWS key, or Vault's token or AppRole.
  const wrap = config.store.key;
  if (wrap !== undefined && wrap !== 'file' && wrap.kms === 'aws')
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) named.add(name);
  if (wrap !== undefined && wrap !== 'file' && wrap.kms === 'gcp') note(wrap.credentials);
  if (wrap !== undefined && wrap !== 'file' && wrap.kms === 'vault_transit') {
    note(wrap.token);
    note(wrap.approle?.role_id);
    note(wrap.approle?.secret_id);
    if (wrap.token === undefined && wrap.approle === undefined) named.add('VAULT_TOKEN');
  }
  // A secret source's own credentials: its references, and the variables its SDK reads when the
  // config names none (the AWS key in keyway's environment, VAULT_TOKEN).
  for (const source of Object.values(config.secret_sources ?? {})) {
    // The keyring's own credential is the desktop session itself.
    if (source.type === 'keychain') continue;
    if (source.type === 'gcp_secret_manager') {
      note(source.credentials);
    } else if (source.type === 'onepassword') {
      note(source.token);
      if (source.token === undefined) named.add('OP_CONNECT_TOKEN');
    } else if (source.type === 'vault_kv') {
      note(source.token);
      note(source.approle?.role_id);
      note(source.approle?.secret_id);
      if (source.token === undefined && source.approle === undefined) named.add('VAULT_TOKEN');
    } else {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) named.add(name);
    }
  }
  return [...named];
}

const AWS_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];

/**
 * The secret variables this environment lacks, to ask a running keyway for (its contain door). The
 * AWS key is one set: taken whole from the running keyway only when this environment has none of
 * it, never mixed (a long-term key here and a session token there would be two identities).
 */
export function missingSecretVariables(config: Config, env: NodeJS.ProcessEnv): string[] {
  const missing = (name: string) => (env[name] ?? '').trim() === '';
  const names = secretVariableNames(config);
  const awsHere = AWS_CREDENTIALS.some((name) => !missing(name));
  return names.filter((name) => (AWS_CREDENTIALS.includes(name) ? !awsHere : missing(name)));
}
