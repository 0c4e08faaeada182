// Live reload: SIGHUP, `keyway reload` and POST /api/reload re-read the config file while the proxy
// runs. The new config is validated (in the isolated loader) and every table built from it before
// anything is swapped, so a bad config is refused whole and the running one stays. A swap only
// replaces what new requests read; connections and requests in flight keep what they started with.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { buildAgents, compileConfigAgents, type Agent } from '../credentials/agents.ts';
import type { Grant } from '../credentials/grant.ts';
import { buildGrants } from '../credentials/grant-table.ts';
import { certificateWarning } from '../credentials/client-certificate.ts';
import { KeywayError } from '../errors/index.ts';
import { GrantRouter } from '../policy/access.ts';
import { EgressPolicy } from '../policy/egress.ts';
import { createResolver, guardResolver, type Resolver } from '../egress/resolve.ts';
import type { ProxyTables } from '../credentials/tables.ts';
import type { Services } from '../open-home.ts';
import { changedKeys, needsRestart } from './config-changes.ts';
import type { LoadedPolicySet } from '../policy/cedar/load.ts';
import { adminEvent } from '../audit/admin-event.ts';

/** Who asked for a reload, as its audit line records it. */
export interface ReloadOrigin {
  /** The admin route (`POST /api/reload`), or null for a signal. */
  method: string | null;
  path: string | null;
  /** The listener that took the request (the proxy's own for a signal). */
  host: string;
  port: number;
  /** The caller's address, or the signal's name (`SIGHUP`). */
  client: string;
  /** Who asked: `token` or `session` through the admin API, the signal's name for a signal. */
  actor?: string | null | undefined;
  /** A worker's reload (proxy.workers), which its primary audits once for all: no line of its own. */
  quiet?: boolean | undefined;
}

export type ReloadOutcome =
  | { reloaded: true; changed: string[]; needs_restart: string[] }
  | { reloaded: false; error: { code: 'config_invalid'; message: string } };

export interface LiveConfigOptions {
  services: Services;
  env: NodeJS.ProcessEnv;
  /** Reads and validates the config file again (the isolated loader, with start's home and file). */
  load: () => Promise<Config>;
  /** The policy loaded at start (policy/cedar/load.ts), and how a reload loads the next from its config. */
  policy: LoadedPolicySet;
  loadPolicy: (config: Config) => Promise<LoadedPolicySet>;
  /** Replaces the system resolver after proxy.hosts (tests script DNS with it). */
  dns?: Resolver | undefined;
  /** The audit writer itself: admin lines are not proxied requests, so `keyway status` does not count them. */
  audit: { write(event: AuditEvent): Promise<void> };
  logger: Logger;
}

/** What is built from one config: swapped as a whole, never piece by piece. */
interface Built {
  config: Config;
  configAgents: ReadonlyMap<string, Agent>;
  tables: ProxyTables;
  grantCount: number;
  lookupHost: Resolver;
  resolve: Resolver;
}

/**
 * The config in force and everything the request path derives from it. The proxy reads `config`,
 * `tables`, `resolve` and `lookupHost` on each request; a store change rebuilds the tables, a
 * reload rebuilds everything.
 */
export class LiveConfig {
  readonly #o: LiveConfigOptions;
  #built: Built;
  // One reload at a time: two at once would both diff against the same old config.
  #queue: Promise<unknown> = Promise.resolve();
  readonly #appliers: Array<(config: Config) => void> = [];
  #policy: LoadedPolicySet;

  constructor(options: LiveConfigOptions) {
    this.#o = options;
    this.#built = this.#build(options.services.config);
    this.#policy = options.policy;
  }

  /** The policy in force: YAML rules compiled and Cedar files, with its hash (swapped with the config at a reload). */
  get policy(): LoadedPolicySet {
    return this.#policy;
  }

  /** Whether this process wrote a policy.load line: from then on every change of policy writes one. */
  #loadsAudited = false;

  /**
   * The `policy.load` admin line: the hash loaded and its Cedar files, so that every line's `policy`
   * names a load (audit verify). Written at start and by each reload that changes the hash, once
   * there are Cedar files: a keyway with YAML rules only writes its log as before (its lines carry
   * the hash, and verify passes lines before any policy.load line), and one whose last Cedar file
   * went still records that change. A reload writes it before it puts the policy in force, so that
   * no request is judged (and written ahead) under a hash that no earlier line loaded.
   */
  async auditPolicyLoad(policy: LoadedPolicySet = this.#policy): Promise<void> {
    if (!policy.hasCedarFiles && !this.#loadsAudited) return;
    this.#loadsAudited = true;
    const event = adminEvent({ action: 'policy.load', client: 'keyway', policy: policy.hash, files: policy.files.join(',') });
    await this.#o.audit.write(event).catch((err: unknown) => {
      this.#o.logger.error({ err: { code: (err as NodeJS.ErrnoException).code } }, 'the audit line of a policy load could not be written');
    });
  }
  get config(): Config {
    return this.#built.config;
  }

  get tables(): ProxyTables {
    return this.#built.tables;
  }

  get grantCount(): number {
    return this.#built.grantCount;
  }

  /** proxy.hosts, then the system resolver, then the egress check (proxy.allow_networks). */
  readonly resolve: Resolver = (host) => this.#built.resolve(host);
  /** proxy.hosts, then the system resolver, unchecked: token endpoints, which only the user configures. */
  readonly lookupHost: Resolver = (host) => this.#built.lookupHost(host);

  /** Runs after each reload that is taken, for parts that hold a setting themselves (the servers' timeouts). */
  onApply(apply: (config: Config) => void): void {
    this.#appliers.push(apply);
  }

  /** After a store change (a CLI write): grants and agents again, from the config in force. Throws to keep the old. */
  rebuildTables(): void {
    const { config, configAgents } = this.#built;
    this.#built = { ...this.#built, ...this.#tables(config, configAgents) };
  }

  /** Re-reads the config file; applies it, or refuses it with the reason. Audited and logged either way. */
  reload(origin: ReloadOrigin): Promise<ReloadOutcome> {
    const next = this.#queue.then(() => this.#reloadNow(origin));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #reloadNow(origin: ReloadOrigin): Promise<ReloadOutcome> {
    const startedAt = performance.now();
    let outcome: ReloadOutcome;
    try {
      const config = await this.#o.load();
      // Built in full before the swap: a grant secret or agent key that cannot be read refuses it,
      // and so does a Cedar file that does not parse or that others may write (the old policy stays).
      const loaded = await this.#o.loadPolicy(config);
      // The same policy from the same files: the one in force is kept, with the slices its engine already holds.
      const same = loaded.hash === this.#policy.hash && loaded.files.join('\n') === this.#policy.files.join('\n');
      const policy = same ? this.#policy : loaded;
      const before = this.#built;
      let built = this.#build(config);
      const policyChanged = policy.hash !== this.#policy.hash;
      if (policyChanged && origin.quiet !== true) {
        await this.auditPolicyLoad(policy);
        // A store change (rebuildTables) while the line was written: built again, to keep it.
        if (this.#built !== before) built = this.#build(config);
      }
      const changed = changedKeys(this.#built.config, config);
      // A change of the YAML rules shows as its config keys (agents.…); `policy` names a change of
      // the Cedar files themselves (one edited, added or removed), which no config key shows.
      if (JSON.stringify(loaded.texts) !== JSON.stringify(this.#policy.texts)) changed.push('policy');
      const orphaned = parentsGone(this.#built.configAgents, built.configAgents);
      this.#built = built;
      this.#policy = policy;
      this.#o.services.config = config;
      for (const apply of this.#appliers) apply(config);
      outcome = { reloaded: true, changed, needs_restart: changed.filter(needsRestart) };
      await this.#dropChildren(orphaned);
      this.#o.logger.info({ via: origin.client, changed, needs_restart: outcome.needs_restart }, 'config reloaded');
    } catch (err) {
      // A KeywayError's message is keyway's own one line (key path first, no value quoted).
      const message = err instanceof KeywayError ? err.message : 'the config could not be loaded';
      outcome = { reloaded: false, error: { code: 'config_invalid', message } };
      this.#o.logger.warn({ via: origin.client, reason: message }, 'config reload refused; the running config stays');
    }
    if (origin.quiet !== true) {
      await this.#audit(origin, outcome, performance.now() - startedAt);
    }
    return outcome;
  }

  /** Children of config agents this reload removed or re-keyed: out of the table already, and out of the store now. */
  async #dropChildren(parents: readonly string[]): Promise<void> {
    if (parents.length === 0) return;
    try {
      // Loaded only when a reload removed a parent: minting's module reads the config's schema, which a start never loads.
      const { dropChildrenOf } = await import('../operations/delegation.ts');
      const gone = await dropChildrenOf(this.#o.services.store, parents);
      if (gone.length > 0) this.#o.logger.info({ parents, children: gone }, 'delegated agents removed with their parents');
    } catch (err) {
      // Still out of the table (their links do not resolve); only a parent added again under its old key would find them.
      this.#o.logger.warn(
        { parents, err: { code: (err as NodeJS.ErrnoException).code } },
        'the children of removed agents could not be removed from the store',
      );
    }
  }

  async #audit(origin: ReloadOrigin, outcome: ReloadOutcome, ms: number): Promise<void> {
    const event: AuditEvent = {
      ts: new Date().toISOString(),
      id: randomUUID(),
      agent: null,
      grant: null,
      decision: 'admin',
      code: outcome.reloaded ? null : 'config_invalid',
      method: origin.method,
      host: origin.host,
      port: origin.port,
      path: origin.path,
      status: origin.method === null ? null : outcome.reloaded ? 200 : 422,
      duration_ms: Math.round(ms * 100) / 100,
      refreshed: false,
      client: origin.client,
      action: 'reload',
      ...(origin.actor ? { actor: origin.actor } : {}),
      ...(outcome.reloaded ? { changed: outcome.changed.join(',') } : { message: outcome.error.message }),
    };
    // A reload is not undone for want of its audit line (the file is the truth, and the operator
    // asked for it); the failure is logged, and the audit sink turns unhealthy for proxied requests.
    await this.#o.audit.write(event).catch((err: unknown) => {
      this.#o.logger.error({ err: { code: (err as NodeJS.ErrnoException).code } }, 'the audit line of a reload could not be written');
    });
  }

  #build(config: Config): Built {
    const configAgents = compileConfigAgents(config, this.#o.env);
    const lookupHost = createResolver(config.proxy.hosts, this.#o.dns);
    return {
      config,
      configAgents,
      ...this.#tables(config, configAgents),
      lookupHost,
      resolve: guardResolver(lookupHost, new EgressPolicy(config.proxy.allow_networks)),
    };
  }

  /** What was last said of each grant's client certificate: said again only when it changes. */
  readonly #certificateWarnings = new Map<string, string>();

  /** A log line at start (and when it changes) for a client certificate expired, unusable or within 14 days of notAfter. */
  #warnCertificates(grants: Iterable<Grant>): void {
    const now = Date.now();
    for (const grant of grants) {
      const line = grant.clientCertificate && certificateWarning(grant.clientCertificate, now);
      if (!line) {
        this.#certificateWarnings.delete(grant.id);
        continue;
      }
      if (this.#certificateWarnings.get(grant.id) === line) continue;
      this.#certificateWarnings.set(grant.id, line);
      this.#o.logger.warn({ grant: grant.id }, `grant ${grant.id}: ${line}`);
    }
  }

  #tables(config: Config, configAgents: ReadonlyMap<string, Agent>): Pick<Built, 'tables' | 'grantCount'> {
    const { store } = this.#o.services;
    const grants = buildGrants(config, store, this.#o.env);
    this.#warnCertificates(grants.values());
    return { tables: { router: new GrantRouter(grants.values()), agents: buildAgents(config, store, this.#o.env, configAgents) }, grantCount: grants.size };
  }
}

/** Config agents that are gone, or hold another key (or identity mapping), after a reload: their children go with them. */
function parentsGone(before: ReadonlyMap<string, Agent>, after: ReadonlyMap<string, Agent>): string[] {
  return [...before.values()]
    .filter((agent) => {
      const now = after.get(agent.id);
      if (now === undefined) return true;
      // What its children are tied to: its key, or a keyless agent's identity mapping (delegation/identity-tie.ts).
      const was = agent.keySha256 ?? agent.identityTieSha256;
      const is = now.keySha256 ?? now.identityTieSha256;
      return was !== undefined && (is === undefined || !is.equals(was));
    })
    .map((agent) => agent.id);
}
