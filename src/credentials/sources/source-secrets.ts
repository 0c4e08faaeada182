// The values of secret sources (config/secret-sources.ts): one entry per item (grants that name the
// same item share it), one fetch in flight per item (200 requests on a cold entry fetch once) and,
// with `shared`, one per ttl across every process on the store (shared-values.ts: the value sealed
// in the store, fetched under its refresh lock), the value used for the source's `ttl`, a failure remembered
// for `failure_ttl`, and the last value served for at most `max_stale` past its ttl while the source
// cannot be reached. Past that the request fails with 502 secret_unavailable and nothing is sent
// upstream without its credential. An upstream's 401 fetches again at once (once), as a refresh does.
// With `shared`, a value is sent only while the store's record holds it, as of a look begun after the
// request came; a 401 drops the record (awaited) before it is answered, so a value refused in one
// process is sent by no other after that (shared-values.ts).
import type { Config } from '../../config/index.ts';
import type { SecretSourceConfig } from '../../config/secret-sources.ts';
import { describeSourced, type SourcedSecret, sourcedKey } from '../../config/sourced-secret.ts';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import { createReader } from './create-reader.ts';
import { SourceFailure, type SourceReader } from './reader.ts';
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

  /**
   * The item's text: cached, from the fetch in flight, from a new fetch, or (the source failing) the
   * last value within max_stale; with `shared`, only while the store holds it (#stillShared).
   */
  async get(grantId: string, item: SourcedSecret): Promise<string> {
    const value = await this.#candidate(grantId, item);
    if (await this.#stillShared(grantId, item, value)) return value;
    // Dropped (an upstream refused it) or replaced by another process since this one took it: once
    // more, from the store or the source. Dropped again meanwhile: not sent.
    const again = await this.#candidate(grantId, item);
    if (await this.#stillShared(grantId, item, again)) return again;
    throw unavailable(grantId, item, 'an upstream refused its value while it was being fetched again');
  }

  /** The item's text as this process holds or gets it, not yet checked against the store. */
  async #candidate(grantId: string, item: SourcedSecret): Promise<string> {
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
    // Another value than the one refused (fetched since), or the refused one fetched again less than
    // REFETCH_HOLD_MS ago (the source gives it still; this 401 answers a request sent before): it
    // will do, while the store holds it.
    if (entry.inFlight === undefined && fresh && (!isRejected(entry.value!) || now - entry.refetchedAt < REFETCH_HOLD_MS)) {
      const held = entry.value!;
      if (await this.#stillShared(grantId, item, held)) return held;
    }
    // The refused value is dropped everywhere before this 401 is answered: this process's copy, and
    // the store's record, which every process looks at before it sends a value. Never served again,
    // fresh or stale, by any process: only a fetch made after the drop gives a value.
    if (entry.value !== undefined && isRejected(entry.value)) this.#drop(entry);
    await this.#dropShared(grantId, item, isRejected);
    if (entry.inFlight === undefined && entry.failure && now < entry.failure.until) throw unavailable(grantId, item, entry.failure.reason);
    let value: string;
    try {
      value = await (entry.inFlight ?? this.#fetch(item, source, entry, isRejected));
    } catch (err) {
      throw unavailable(grantId, item, err instanceof SourceFailure ? err.message : String(err));
    }
    entry.refetchedAt = this.#now();
    if (await this.#stillShared(grantId, item, value)) return value;
    return this.get(grantId, item);
  }

  /** This process's copy dropped: never served again, fresh or stale. */
  #drop(entry: Entry): void {
    entry.value = undefined;
    entry.freshUntil = 0;
    entry.staleUntil = 0;
  }

  /** The store's record dropped if it holds the refused value, before anything else is done (awaited: the drop is what the other processes see). */
  async #dropShared(grantId: string, item: SourcedSecret, isRejected: (value: string) => boolean): Promise<void> {
    const shared = this.#o.shared;
    if (shared === undefined) return;
    try {
      await shared.forget(SharedValues.idOf(sourcedKey(item)), isRejected);
    } catch (err) {
      throw unavailable(grantId, item, `the refusal cannot be written to the store, where every process would see it (${reasonOf(err)})`);
    }
  }

  /**
   * Whether the store holds `value` as the item's still, as of a look begun after this was asked
   * (shared-values.ts current()): a value any process dropped (an upstream refused it) is not sent
   * after the drop was written. A value dropped or replaced there is dropped here too. Without a
   * shared store (doctor), this process alone decides.
   */
  async #stillShared(grantId: string, item: SourcedSecret, value: string): Promise<boolean> {
    const shared = this.#o.shared;
    if (shared === undefined) return true;
    let saved: SharedValue | undefined;
    try {
      saved = await shared.current(SharedValues.idOf(sourcedKey(item)));
    } catch (err) {
      throw unavailable(grantId, item, `the store cannot be read to check the value was not refused (${reasonOf(err)})`);
    }
    if (saved?.value === value) return true;
    const entry = this.#entries.get(sourcedKey(item));
    if (entry?.value === value) this.#drop(entry);
    return false;
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
    // Only a value the store holds is sent (#stillShared): one it cannot keep is a failed fetch.
    const kept = async (value: string): Promise<{ value: string; fetchedAt: number }> => {
      const fetchedAt = this.#now();
      try {
        await shared!.write(id, { key: entry.key, value, fetched_at: fetchedAt });
      } catch (err) {
        throw new SourceFailure(`the value fetched cannot be kept in the store, where every process checks it was not refused (${reasonOf(err)})`);
      }
      return { value, fetchedAt };
    };
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
          return kept(await fromReader());
        });
      } catch (err) {
        // The source's own failure is the answer; the store's lock or read failing costs the
        // sharing, not the request: this process asks the source alone (and keeps the value there).
        if (asked || err instanceof SourceFailure) throw err;
        return kept(await fromReader());
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

/** A store's error in one line (its code and message name the store, never a value). */
function reasonOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}

/** 502 secret_unavailable: which source and item, and why, never a value. */
function unavailable(grantId: string, item: SourcedSecret, reason: string): ProxyError {
  return new ProxyError('secret_unavailable', `grant "${grantId}": its secret source ${describeSourced(item)} cannot give the secret: ${reason}`, {
    grant: grantId,
    hint: `check the source with \`keyway doctor\` (it probes each source and item); the request was not sent`,
  });
}
