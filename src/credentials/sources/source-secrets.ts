// The values of secret sources (config/secret-sources.ts): one entry per item (grants that name the
// same item share it), one fetch in flight per item (200 requests on a cold entry fetch once) and,
// with `shared`, one per ttl across every process on the store (shared-values.ts: the value sealed
// in the store, fetched under its refresh lock), the value used for the source's `ttl`, a failure remembered
// for `failure_ttl`, and the last value served for at most `max_stale` past its ttl while the source
// cannot be reached. Past that the request fails with 502 secret_unavailable and nothing is sent
// upstream without its credential. An upstream's 401 fetches again at once (once), as a refresh does.
import type { Config } from '../../config/index.ts';
import { describeSourced, type SecretSourceConfig, type SourcedSecret, sourcedKey } from '../../config/secret-sources.ts';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import { createReader, SourceFailure, type SourceReader } from './reader.ts';
import { type SharedValue, SharedValues } from './shared-values.ts';

/** After a 401, a fetch that gave the same value again is trusted this long (other 401s join it). */
const REFETCH_HOLD_MS = 1_000;

export interface SourceObserver {
  /** One fetch of a source ended: ok, or failed. */
  secretSourceFetch(source: string, ok: boolean): void;
}

export interface SourceSecretsOptions {
  config: () => Config;
  env: NodeJS.ProcessEnv;
  observer?: SourceObserver | undefined;
  /** Told once per entry when a stale value is served, and when the source is back. */
  warn?: ((line: string) => void) | undefined;
  now?: (() => number) | undefined;
  /** The store the proxy's processes share: one fetch per ttl across them (absent: this process alone, as doctor does). */
  shared?: SharedValues | undefined;
}

interface Entry {
  readonly key: string;
  value: string | undefined;
  /** Until when the value is used without a fetch. */
  freshUntil: number;
  /** Until when the value may still be served while fetches fail (freshUntil + max_stale). */
  staleUntil: number;
  refetchedAt: number;
  inFlight: Promise<string> | undefined;
  failure: { reason: string; until: number } | undefined;
  servingStale: boolean;
}

export class SourceSecrets {
  readonly #o: SourceSecretsOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #readers = new Map<string, { key: string; reader: Promise<SourceReader> }>();

  constructor(options: SourceSecretsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The item's text: cached, from the fetch in flight, from a new fetch, or (the source failing) the last value within max_stale. */
  async get(grantId: string, item: SourcedSecret): Promise<string> {
    const source = this.#source(grantId, item);
    const entry = this.#entry(item, source);
    const now = this.#now();
    if (entry.value !== undefined && now < entry.freshUntil) return entry.value;
    if (entry.inFlight) return this.#settle(grantId, item, entry, entry.inFlight);
    if (entry.failure && now < entry.failure.until) return this.#staleOr(grantId, item, entry, entry.failure.reason);
    return this.#settle(grantId, item, entry, this.#fetch(item, source, entry));
  }

  /**
   * The upstream refused a value (`isRejected` knows it): fetches again at once (joining a fetch in
   * flight) unless another request just did. A failure here is never answered with the stale value:
   * that is the value just refused.
   */
  async afterRejection(grantId: string, item: SourcedSecret, isRejected: (value: string) => boolean): Promise<string> {
    const source = this.#source(grantId, item);
    const entry = this.#entry(item, source);
    const now = this.#now();
    const fresh = entry.value !== undefined && now < entry.freshUntil;
    if (entry.inFlight === undefined && fresh && (!isRejected(entry.value!) || now - entry.refetchedAt < REFETCH_HOLD_MS)) return entry.value!;
    // A value the upstream refused is never served again, fresh or stale, here or (its shared
    // record dropped) by another process: only a new fetch gives one.
    if (entry.value !== undefined && isRejected(entry.value)) this.#forget(item, entry);
    if (entry.inFlight === undefined && entry.failure && now < entry.failure.until) throw unavailable(grantId, item, entry.failure.reason);
    try {
      const value = await (entry.inFlight ?? this.#fetch(item, source, entry, isRejected));
      entry.refetchedAt = this.#now();
      return value;
    } catch (err) {
      throw unavailable(grantId, item, err instanceof SourceFailure ? err.message : String(err));
    }
  }

  /** Drops the entry's value, and the value other processes would take from the store. */
  #forget(item: SourcedSecret, entry: Entry): void {
    entry.value = undefined;
    entry.freshUntil = 0;
    entry.staleUntil = 0;
    void this.#o.shared?.forget(SharedValues.idOf(sourcedKey(item))).catch(() => undefined);
  }

  /** Whether a fetch of this item is cached now (for listings): when it was last fetched, or undefined. */
  fetchedAt(item: SourcedSecret): number | undefined {
    const entry = this.#entries.get(sourcedKey(item));
    if (entry?.value === undefined) return undefined;
    const source = this.#o.config().secret_sources[item.from];
    return source === undefined ? undefined : entry.freshUntil - source.ttl;
  }

  #source(grantId: string, item: SourcedSecret): SecretSourceConfig {
    const source = this.#o.config().secret_sources[item.from];
    // The config refuses a grant naming no source; a reload that removed it leaves none to ask.
    if (source === undefined) throw unavailable(grantId, item, `no secret source "${item.from}" in the config`);
    return source;
  }

  /** The item's entry; a new (empty) one when the item or its source's settings changed (a reload). */
  #entry(item: SourcedSecret, source: SecretSourceConfig): Entry {
    const key = JSON.stringify([sourcedKey(item), source]);
    const id = sourcedKey(item);
    let entry = this.#entries.get(id);
    if (entry === undefined || entry.key !== key) {
      entry = { key, value: undefined, freshUntil: 0, staleUntil: 0, refetchedAt: 0, inFlight: undefined, failure: undefined, servingStale: false };
      this.#entries.set(id, entry);
    }
    return entry;
  }

  #reader(name: string, source: SecretSourceConfig): Promise<SourceReader> {
    const key = JSON.stringify(source);
    const known = this.#readers.get(name);
    if (known?.key === key) return known.reader;
    const reader = createReader(source, this.#o.env, this.#o.config().home);
    this.#readers.set(name, { key, reader });
    return reader;
  }

  /**
   * A value for the entry: one another process saved fresh in the store, or one fetched now (under
   * the store's lock, and saved there). `isRejected`: after a 401, a saved value the upstream
   * refused is not fresh.
   */
  #fetch(item: SourcedSecret, source: SecretSourceConfig, entry: Entry, isRejected?: (value: string) => boolean): Promise<string> {
    const fromReader = async (): Promise<string> => {
      const signal = AbortSignal.timeout(source.timeout);
      try {
        const value = await (await this.#reader(item.from, source)).fetch(item, signal);
        if (value.trim() === '') throw new SourceFailure('the value is empty');
        this.#o.observer?.secretSourceFetch(item.from, true);
        return value;
      } catch (err) {
        this.#o.observer?.secretSourceFetch(item.from, false);
        throw err;
      }
    };
    const shared = this.#o.shared;
    const id = SharedValues.idOf(sourcedKey(item));
    const fresh = (saved: SharedValue | undefined): saved is SharedValue =>
      saved !== undefined && saved.key === entry.key && this.#now() < saved.fetched_at + source.ttl && !isRejected?.(saved.value);
    const run = async (): Promise<{ value: string; fetchedAt: number }> => {
      if (shared === undefined) return { value: await fromReader(), fetchedAt: this.#now() };
      const known = shared.peek(id);
      if (fresh(known)) return { value: known.value, fetchedAt: known.fetched_at };
      let asked = false;
      try {
        return await shared.locked(id, source.timeout + 5_000, async () => {
          const saved = await shared.read(id);
          if (fresh(saved)) return { value: saved.value, fetchedAt: saved.fetched_at };
          asked = true;
          const value = await fromReader();
          const fetchedAt = this.#now();
          // A store that cannot be written (a database down) costs the other processes a fetch, not this request.
          await shared.write(id, { key: entry.key, value, fetched_at: fetchedAt }).catch(() => undefined);
          return { value, fetchedAt };
        });
      } catch (err) {
        // The source's own failure is the answer; the store's (its lock, its read: a database down)
        // costs the sharing, not the request: this process asks the source alone.
        if (asked || err instanceof SourceFailure) throw err;
        return { value: await fromReader(), fetchedAt: this.#now() };
      }
    };
    const settled = run().then(
      ({ value, fetchedAt }) => {
        entry.value = value;
        entry.freshUntil = fetchedAt + source.ttl;
        entry.staleUntil = entry.freshUntil + source.max_stale;
        entry.failure = undefined;
        entry.inFlight = undefined;
        if (entry.servingStale) this.#o.warn?.(`secret source ${item.from}: ${describeSourced(item)} fetched again; no longer serving its last value`);
        entry.servingStale = false;
        return value;
      },
      (err: unknown) => {
        // A SourceFailure or a KeywayError (a reference not set, a lock not had) says why in words that hold no value.
        const reason = err instanceof SourceFailure || err instanceof KeywayError ? err.message : 'the fetch failed';
        entry.failure = { reason, until: this.#now() + source.failure_ttl };
        entry.inFlight = undefined;
        // A value another process saved is still servable within max_stale (this process may have none yet).
        const saved = shared?.peek(id);
        if (entry.value === undefined && saved !== undefined && saved.key === entry.key && !isRejected?.(saved.value)) {
          entry.value = saved.value;
          entry.freshUntil = saved.fetched_at + source.ttl;
          entry.staleUntil = entry.freshUntil + source.max_stale;
        }
        throw new SourceFailure(reason);
      },
    );
    entry.inFlight = settled;
    return settled;
  }

  /** The fetch's value; if it fails, the last value while within max_stale, else secret_unavailable. */
  async #settle(grantId: string, item: SourcedSecret, entry: Entry, fetch: Promise<string>): Promise<string> {
    try {
      return await fetch;
    } catch (err) {
      return this.#staleOr(grantId, item, entry, err instanceof SourceFailure ? err.message : String(err));
    }
  }

  #staleOr(grantId: string, item: SourcedSecret, entry: Entry, reason: string): string {
    if (entry.value !== undefined && this.#now() < entry.staleUntil) {
      if (!entry.servingStale) {
        entry.servingStale = true;
        this.#o.warn?.(
          `secret source ${item.from}: ${describeSourced(item)} cannot be fetched (${reason}); serving its last value until ${new Date(entry.staleUntil).toISOString()} (max_stale)`,
        );
      }
      return entry.value;
    }
    // Past max_stale the value is dropped: never used again, whatever the next fetch does.
    entry.value = undefined;
    throw unavailable(grantId, item, reason);
  }
}

/** 502 secret_unavailable: which source and item, and why, never a value. */
function unavailable(grantId: string, item: SourcedSecret, reason: string): ProxyError {
  return new ProxyError('secret_unavailable', `grant "${grantId}": its secret source ${describeSourced(item)} cannot give the secret: ${reason}`, {
    grant: grantId,
    hint: `check the source with \`keyway doctor\` (it probes each source and item); the request was not sent`,
  });
}
