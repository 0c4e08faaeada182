import type { CredentialStore } from '../../credentials/store/credential-store.ts';
import type { StoreDraft } from '../../credentials/store/draft.ts';
import { acquireRefreshLock } from '../../credentials/issuing/refresh-lock.ts';
import { CAPTURED_PREFIX, capturedRecordId } from '../core/placeholder.ts';
import type { CapturedToken, StoredAnswer } from '../core/captured.ts';
import { ANONYMOUS_AGENT } from '../../credentials/agents.ts';
import type { ProxyTables } from '../../credentials/tables.ts';

// Captured tokens in the store: one record per placeholder, keyed by the placeholder's hash, sealed
// with every other record (the store encrypts them all). A record names the grant and the agent it
// belongs to: a placeholder resolves only on that grant's requests, from that agent.

/** Records past use (an expired token, a rotated refresh token) are dropped this long after. */
const KEEP_AFTER_MS = 24 * 60 * 60 * 1000;

export type CaptureStore = Pick<CredentialStore, 'get' | 'entries' | 'update' | 'acquireRefreshLock'>;

export class CaptureBook {
  readonly #store: CaptureStore;
  readonly #lockDir: string;
  /** Per refresh token, the end of the chain of this process's requests holding or waiting for its lock. */
  readonly #local = new Map<string, Promise<void>>();

  constructor(store: CaptureStore, lockDir: string) {
    this.#store = store;
    this.#lockDir = lockDir;
  }

  /** The record for a placeholder key, as this process has read the store (no I/O). */
  find(key: string): CapturedToken | undefined {
    return this.#store.get<CapturedToken>(capturedRecordId(key));
  }

  /** The record as the store holds it now (read under its write lock: another process's save is seen). */
  read(key: string): Promise<CapturedToken | undefined> {
    const id = capturedRecordId(key);
    return this.#store.update((draft) => draft.get(id) as CapturedToken | undefined);
  }

  /**
   * Saves a capture's records in one write and, for a refresh, marks the refresh token exchanged
   * with the answer given; drops the grant and agent's records past use.
   */
  save(
    records: ReadonlyArray<readonly [key: string, CapturedToken]>,
    exchanged: { key: string; answer: StoredAnswer | undefined } | undefined,
    now: number,
  ): Promise<void> {
    return this.#store.update((draft) => {
      for (const [key, record] of records) draft.set(capturedRecordId(key), record);
      if (exchanged !== undefined) {
        const id = capturedRecordId(exchanged.key);
        const before = draft.get(id) as CapturedToken | undefined;
        if (before !== undefined) draft.set(id, { ...before, exchanged_at: new Date(now).toISOString(), answer: exchanged.answer });
      }
      const first = records[0]?.[1];
      if (first !== undefined) prune(draft, first.grant, first.agent, now);
    });
  }

  /**
   * A lock on one refresh token, across every process on the store (a lock file, or PostgreSQL's
   * advisory lock): held from the refresh request until its answer is captured. Returns its release.
   */
  lock(key: string, waitMs: number): Promise<() => Promise<void>> {
    // In this process first, one request at a time per token (a promise chain): the others wait on
    // it, not on the lock file's retries or a database connection each.
    const before = this.#local.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const chain = before.then(() => mine);
    this.#local.set(key, chain);
    const leave = () => {
      done();
      if (this.#local.get(key) === chain) this.#local.delete(key);
    };
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`still waiting for another refresh after ${waitMs} ms`)), waitMs);
      before.then(resolve, resolve);
    });
    return waited
      .then(async () => {
        clearTimeout(timer);
        const name = `capture-${capturedRecordId(key).slice(CAPTURED_PREFIX.length, CAPTURED_PREFIX.length + 16)}`;
        const release = this.#store.acquireRefreshLock
          ? await this.#store.acquireRefreshLock(name, waitMs)
          : await acquireRefreshLock(this.#lockDir, name, waitMs);
        let released = false;
        return async () => {
          if (released) return;
          released = true;
          try {
            await release();
          } finally {
            leave();
          }
        };
      })
      .catch((err: unknown) => {
        clearTimeout(timer);
        leave();
        throw err;
      });
  }
}

/** At most this many logins per grant and agent are kept (the oldest go first), */
const MAX_LOGINS = 16;
/** and of each field of a login, this many (the newest: older access tokens a refresh replaced go). */
const MAX_PER_FIELD = 4;

/**
 * A grant and agent's records past use: expired, or exchanged (rotated away), a day ago; past
 * MAX_LOGINS logins, the oldest logins whole; past MAX_PER_FIELD of one field in a login, the oldest.
 * An agent that logs in again and again cannot grow the store without end.
 */
function prune(draft: StoreDraft, grant: string, agent: string, now: number): void {
  const live: Array<[string, CapturedToken]> = [];
  for (const [id, record] of draft.entries<CapturedToken>(CAPTURED_PREFIX)) {
    if (record.grant !== grant || record.agent !== agent) continue;
    const done = record.answer?.rotated || (record.exchanged_at !== undefined && record.answer === undefined) ? record.exchanged_at : record.expires_at;
    if (done !== undefined && Date.parse(done) + KEEP_AFTER_MS < now) draft.delete(id);
    else live.push([id, record]);
  }
  const newest = new Map<string, string>();
  for (const [, r] of live) if ((newest.get(r.login) ?? '') < r.captured_at) newest.set(r.login, r.captured_at);
  const keptLogins = new Set(
    [...newest]
      .sort((a, b) => b[1].localeCompare(a[1]))
      .slice(0, MAX_LOGINS)
      .map(([login]) => login),
  );
  const perField = new Map<string, Array<[string, CapturedToken]>>();
  for (const entry of live) {
    const [id, r] = entry;
    if (!keptLogins.has(r.login)) {
      draft.delete(id);
      continue;
    }
    const group = `${r.login}\u0000${r.field}`;
    perField.set(group, [...(perField.get(group) ?? []), entry]);
  }
  for (const group of perField.values()) {
    if (group.length <= MAX_PER_FIELD) continue;
    group.sort((a, b) => b[1].captured_at.localeCompare(a[1].captured_at));
    for (const [id] of group.slice(MAX_PER_FIELD)) draft.delete(id);
  }
}

/** Drops the captured tokens `match` picks (a grant removed, an agent removed); returns how many. */
export function dropCaptured(draft: StoreDraft, match: (record: CapturedToken) => boolean): number {
  let dropped = 0;
  for (const [id, record] of draft.entries<CapturedToken>(CAPTURED_PREFIX)) {
    if (!match(record)) continue;
    draft.delete(id);
    dropped++;
  }
  return dropped;
}

/** The owners in force, from the proxy's tables. */
export function captureOwners(tables: ProxyTables): CaptureOwners {
  const captureGrants = new Set(
    tables.router
      .list()
      .filter((g) => g.logins !== undefined)
      .map((g) => g.id),
  );
  return { captureGrants, agentExists: (id) => (tables.agents.anonymous ? id === ANONYMOUS_AGENT.id : tables.agents.get(id) !== undefined) };
}

/** What orphaned captures are judged against: the capture grants and the agents in force. */
export interface CaptureOwners {
  readonly captureGrants: ReadonlySet<string>;
  agentExists(id: string): boolean;
}

/**
 * Drops captured tokens whose grant is no longer a capture grant, or whose agent is gone (removed
 * from the config: revoked), so that an agent or grant added later under the same id does not
 * inherit them. Writes only when there is something to drop; returns how many went.
 */
export async function dropOrphanedCaptures(store: CaptureStore, owners: CaptureOwners): Promise<number> {
  const orphan = (record: CapturedToken) => !owners.captureGrants.has(record.grant) || !owners.agentExists(record.agent);
  if (!store.entries<CapturedToken>(CAPTURED_PREFIX).some(([, record]) => orphan(record))) return 0;
  return store.update((draft) => dropCaptured(draft, orphan));
}
