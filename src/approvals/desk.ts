import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/index.ts';
import type { StoreDraft } from '../credentials/store/draft.ts';
import { ProxyError } from '../errors/index.ts';
import type { RuleApproval } from '../policy/rules.ts';
import { answerInStore, answerLine } from './answer.ts';
import { type AskedRequest, type DecisionAsked, type DecisionResult, EMPTY_SHA256, onceFor, querySha256, sameRequest, windowCovers } from './decide.ts';
import { approvalLine } from './lines.ts';
import { bodyPreview } from './preview.ts';
import { APPROVAL_PREFIX, type ApprovalHolder, type ApprovalRecord, approvalRecordId, effectiveState, liveWindow, newApprovalId } from './record.ts';

// The approvals desk: where a request that a rule sends to a person (approve: human) is asked
// about, held, and let go. Every process on the store has one; they share the records
// (`approval:<id>`), so a person may answer at any replica, with the CLI or the admin API, and the
// process holding the request hears of it through the store's change feed (storeChanged).

/** The bounds on what is asked and held (config `approvals:`). */
export interface ApprovalsLimits {
  max_pending: number;
  max_pending_per_agent: number;
  max_held_body: number;
  pending_ttl: number;
}

interface DeskStore {
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R>;
}

export interface DeskOptions {
  store: DeskStore;
  /** Where approval lines go (decision `approval`): the audit writer itself, in the hash chain. */
  audit: { write(event: AuditEvent): Promise<void> };
  logger: Logger;
  limits: () => ApprovalsLimits;
  now: () => Date;
  /** This process, as held records name it. */
  holder: ApprovalHolder;
  /** Announces a new pending approval (approvals.notify); never throws. */
  notify?: ((record: ApprovalRecord) => void) | undefined;
  /** Whether a process holding requests is still running (same host only); tests may replace it. */
  alive?: (holder: ApprovalHolder) => boolean;
}

/** A request that a rule sends to a person, as the approval stage describes it. */
export interface ApprovalAsk extends AskedRequest {
  rule: RuleApproval;
  purpose: string | undefined;
  /** The whole body, held (stage approval), or empty. */
  body: Buffer;
  /**
   * The body as the preview may show it, when not `body`: the grant's own secret masked in every
   * form keyway knows (stage approval), so an agent that plants it in a field named innocently, or
   * its base64, cannot have it posted to the approvers (Slack, the webhook). The hash is the body's.
   */
  shown?: Buffer | undefined;
  /**
   * What a yes for once is bound to, when not the body's SHA-256: on an MCP endpoint, the calls'
   * tools and arguments (a client's retry carries a new JSON-RPC id, and is the same call).
   */
  bodyKey?: string | undefined;
  contentType: string | undefined;
  /** The body's Content-Encoding, if any: such a body is not previewed (the server reads it inflated). */
  contentEncoding?: string | undefined;
  /** Registers a listener for the client hanging up; returns its remover. */
  onClientGone(listener: () => void): () => void;
}

/** Why the request may go on: a window that covers it, or a yes for it. */
export interface ApprovalPass {
  id: string;
  by: string;
  outcome: 'once' | 'window';
}

interface Waiter {
  resolve(record: ApprovalRecord | undefined): void;
}

/** Ended records are kept this long (for listings and the agent's retry), then pruned. */
const KEEP_ENDED_MS = 24 * 3_600_000;
/** How often pending records past their deadline are written as expired, by whichever process sees them first. */
const SWEEP_MS = 2_000;
/** A held record whose holder has not ended it this long past its deadline: its holder is gone. */
const HOLDER_GRACE_MS = 10_000;

export class ApprovalDesk {
  readonly #options: DeskOptions;
  readonly #waiters = new Map<string, Waiter>();
  #sweep: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(options: DeskOptions) {
    this.#options = options;
  }

  /** At start: requests held by a keyway that is no longer running are written as interrupted. */
  async start(): Promise<void> {
    const alive = this.#options.alive ?? sameHostAlive(this.#options.holder);
    const now = this.#options.now();
    const ended = await this.#options.store.update((draft) => {
      const out: ApprovalRecord[] = [];
      for (const [id, record] of draft.entries<ApprovalRecord>(APPROVAL_PREFIX)) {
        if (record.state !== 'pending' || record.holder === null || alive(record.holder)) continue;
        const next: ApprovalRecord = { ...record, state: 'interrupted', ended_at: now.toISOString(), ended_because: 'the keyway holding the request stopped' };
        draft.set(id, next);
        out.push(next);
      }
      return out;
    });
    for (const record of ended)
      this.#line(record, { outcome: 'interrupted', message: `keyway stopped while ${describe(record)} waited; the request was refused` });
    this.#sweep = setInterval(
      () => void this.sweep().catch((err: Error) => this.#options.logger.warn({ err: { message: err.message } }, 'approvals sweep failed')),
      SWEEP_MS,
    );
    this.#sweep.unref();
  }

  /** The bounds in force (config approvals:). */
  limits(): ApprovalsLimits {
    return this.#options.limits();
  }

  /** Every approval, newest first. */
  list(): ApprovalRecord[] {
    const now = this.#options.now();
    return this.#options.store
      .entries<ApprovalRecord>(APPROVAL_PREFIX)
      .map(([, r]) => (effectiveState(r, now) === r.state ? r : { ...r, state: effectiveState(r, now) }))
      .sort((a, b) => b.asked_at.localeCompare(a.asked_at));
  }

  /** Approvals waiting for a person now (the metrics' gauge). */
  pendingCount(): number {
    const now = this.#options.now();
    return this.#options.store.entries<ApprovalRecord>(APPROVAL_PREFIX).filter(([, r]) => effectiveState(r, now) === 'pending').length;
  }

  get(id: string): ApprovalRecord | undefined {
    const record = this.#options.store.get<ApprovalRecord>(approvalRecordId(id));
    if (record === undefined) return undefined;
    const state = effectiveState(record, this.#options.now());
    return state === record.state ? record : { ...record, state };
  }

  /**
   * Lets the request through (a window or a yes covers it), or asks a person and waits (the rule's
   * wait), or refuses: approval_required (wait: 0), approval_denied, approval_expired.
   */
  async pass(ask: ApprovalAsk): Promise<ApprovalPass> {
    const { store } = this.#options;
    const now = this.#options.now();
    const request: AskedRequest = {
      agent: ask.agent,
      grant: ask.grant,
      method: ask.method.toUpperCase(),
      host: ask.host,
      port: ask.port,
      path: ask.path,
      query: ask.query,
      overrides: ask.overrides,
      tool: ask.tool,
      chain: ask.chain,
    };
    const sha256 = ask.bodyKey ?? (ask.body.length === 0 ? EMPTY_SHA256 : hash('sha256', ask.body, 'hex'));
    const records = store.entries<ApprovalRecord>(APPROVAL_PREFIX).map(([, r]) => r);

    // A fresh question (an anomaly hold) is covered only by a yes a person gave to that question.
    const asked = (r: ApprovalRecord) => ask.rule.fresh !== true || sameQuestion(r, ask.rule);
    const window = records.find((r) => windowCovers(r, request, now) && asked(r));
    if (window) return { id: window.id, by: window.decision!.by, outcome: 'window' };
    for (const once of records.filter((r) => onceFor(r, request, sha256) && asked(r))) {
      if (await this.#spend(once.id, now)) return { id: once.id, by: once.decision!.by, outcome: 'once' };
    }
    if (ask.rule.waitMs === 0) {
      // The agent's retry before anyone answered, or after a no: told so again, not asked again.
      const earlier = records.find(
        (r) => r.holder === null && sameRequest(r, request) && (r.body?.sha256 ?? EMPTY_SHA256) === sha256 && isOpenOrRefused(r, now),
      );
      if (earlier && effectiveState(earlier, now) === 'pending') throw required(earlier);
      if (earlier) throw denied(earlier);
    }
    if (this.#stopping)
      throw new ProxyError('approval_expired', 'keyway is stopping and asks no one now', { grant: ask.grant, hint: 'retry once keyway is back' });

    const record = this.#newRecord(ask, sha256, now);
    const created = await store.update((draft) => this.#admit(draft, record, now, ask.rule.holdsPerAgent));
    if (typeof created === 'string') {
      throw new ProxyError('rate_limited', created, {
        grant: ask.grant,
        hint: 'a person must answer the approvals already waiting (keyway approvals list)',
        retryAfter: 30,
      });
    }
    this.#line(record, { outcome: 'pending' });
    this.#options.notify?.(record);
    if (record.holder === null) throw required(record);
    return this.#hold(record, ask);
  }

  /** A person's answer (CLI, admin API, dashboard): written, audited, and the held request let go. */
  async decide(id: string, asked: DecisionAsked): Promise<DecisionResult> {
    const result = await answerInStore(this.#options.store, id, asked);
    if (result.ok) {
      this.#line(result.record, answerLine(result.record));
      this.storeChanged();
    }
    return result;
  }

  /** Another process (or this one) wrote the store: a held request whose approval was answered goes on. */
  storeChanged(): void {
    if (this.#waiters.size === 0) return;
    for (const [id, waiter] of this.#waiters) {
      const record = this.#options.store.get<ApprovalRecord>(approvalRecordId(id));
      if (record === undefined || record.state !== 'pending') waiter.resolve(record);
    }
  }

  /** Writes pending approvals past their deadline as expired, and prunes what ended a day ago. */
  async sweep(): Promise<void> {
    const now = this.#options.now();
    const { store } = this.#options;
    const due = store
      .entries<ApprovalRecord>(APPROVAL_PREFIX)
      .some(([, r]) => (r.state === 'pending' && this.#sweepable(r, now)) || ended(r, now) + KEEP_ENDED_MS < now.getTime());
    if (!due) return;
    const expired = await store.update((draft) => {
      const out: ApprovalRecord[] = [];
      for (const [key, r] of draft.entries<ApprovalRecord>(APPROVAL_PREFIX)) {
        if (r.state === 'pending' && this.#sweepable(r, now)) {
          const next: ApprovalRecord = { ...r, state: 'expired', ended_at: now.toISOString(), ended_because: 'nobody answered in time' };
          draft.set(key, next);
          out.push(next);
        } else if (r.state !== 'pending' && !liveWindow(r, now) && ended(r, now) + KEEP_ENDED_MS < now.getTime()) draft.delete(key);
      }
      return out;
    });
    for (const record of expired) this.#line(record, { outcome: 'expired', message: `nobody answered ${record.id} by ${record.expires_at}` });
  }

  /** At stop: every held request is refused (approval_expired: keyway stopped), and its record says so. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweep);
    const ids = [...this.#waiters.keys()];
    if (ids.length > 0) {
      const now = this.#options.now();
      const ended = await this.#options.store
        .update((draft) => {
          const out: ApprovalRecord[] = [];
          for (const id of ids) {
            const r = draft.get<ApprovalRecord>(approvalRecordId(id));
            if (r?.state !== 'pending') continue;
            const next: ApprovalRecord = {
              ...r,
              state: 'interrupted',
              ended_at: now.toISOString(),
              ended_because: 'keyway stopped while the request was held',
            };
            draft.set(approvalRecordId(id), next);
            out.push(next);
          }
          return out;
        })
        .catch(() => [] as ApprovalRecord[]);
      for (const record of ended) this.#line(record, { outcome: 'interrupted', message: `keyway stopped while ${describe(record)} waited` });
    }
    for (const waiter of this.#waiters.values()) waiter.resolve(undefined);
  }

  /** Pending and past its deadline; a held one only once its holder had time to end it itself. */
  #sweepable(record: ApprovalRecord, now: Date): boolean {
    const deadline = Date.parse(record.expires_at);
    if (record.holder === null) return deadline <= now.getTime();
    if (this.#waiters.has(record.id)) return false; // ours: the hold's own timer ends it
    return deadline + HOLDER_GRACE_MS <= now.getTime();
  }

  #newRecord(ask: ApprovalAsk, sha256: string, now: Date): ApprovalRecord {
    const held = ask.rule.waitMs > 0;
    const ttl = held ? ask.rule.waitMs : this.#options.limits().pending_ttl;
    const type = ask.contentType?.split(';')[0]?.trim().toLowerCase() || null;
    return {
      id: newApprovalId(),
      state: 'pending',
      agent: ask.agent,
      ...(ask.chain !== undefined ? { chain: [...ask.chain] } : {}),
      grant: ask.grant,
      rule: ask.rule.rule,
      ...(ask.rule.askedBy !== undefined ? { asked_rule: ask.rule.askedBy } : {}),
      ...(ask.rule.signals !== undefined && ask.rule.signals.length > 0 ? { signals: ask.rule.signals.map((s) => ({ name: s.name, why: s.why })) } : {}),
      method: ask.method.toUpperCase(),
      host: ask.host,
      port: ask.port,
      path: ask.path,
      ...(querySha256(ask.query) !== undefined ? { query_sha256: querySha256(ask.query) } : {}),
      ...(ask.overrides !== undefined ? { overrides: ask.overrides } : {}),
      ...(ask.tool !== undefined ? { tool: ask.tool } : {}),
      purpose: ask.purpose ?? null,
      body:
        ask.body.length === 0
          ? null
          : ask.rule.preview === 'none'
            ? { bytes: ask.body.length, type, sha256, preview: null, withheld: true }
            : { bytes: ask.body.length, type, sha256, preview: bodyPreview(ask.shown ?? ask.body, ask.contentType, ask.contentEncoding) },
      asked_at: now.toISOString(),
      expires_at: new Date(now.getTime() + ttl).toISOString(),
      holder: held ? this.#options.holder : null,
      window_ms: ask.rule.windowMs,
      patterns: ask.rule.paths === undefined ? null : [...ask.rule.paths],
    };
  }

  /**
   * Stores a new pending approval unless the agent, or everyone, has as many waiting as allowed;
   * an anomaly hold (`holds`: anomaly.max_holds_per_agent) also unless the agent has that many
   * held for unusual use. Counted here, under the store's lock, as the record is written: counted
   * before (stage anomaly), every request of a parallel burst would read none waiting. Held for
   * unusual use: a pending record of the agent's that carries signals, whatever its rule says.
   */
  #admit(draft: StoreDraft, record: ApprovalRecord, now: Date, holds: number | undefined): true | string {
    const limits = this.#options.limits();
    const pending = draft.entries<ApprovalRecord>(APPROVAL_PREFIX).filter(([, r]) => effectiveState(r, now) === 'pending');
    if (pending.length >= limits.max_pending) return `${pending.length} approvals are waiting for a person already (approvals.max_pending)`;
    const mine = pending.filter(([, r]) => r.agent === record.agent).length;
    if (mine >= limits.max_pending_per_agent) {
      return `agent "${record.agent}" has ${mine} approvals waiting for a person already (approvals.max_pending_per_agent)`;
    }
    if (holds !== undefined) {
      const unusual = pending.filter(([, r]) => r.agent === record.agent && r.signals !== undefined && r.signals.length > 0).length;
      if (unusual >= holds) return `agent "${record.agent}" has ${unusual} unusual requests waiting for a person already (anomaly.max_holds_per_agent)`;
    }
    draft.set(approvalRecordId(record.id), record);
    return true;
  }

  /** Spends a yes for once, under the store's lock: two retries cannot both spend it. */
  #spend(id: string, now: Date): Promise<boolean> {
    return this.#options.store.update((draft) => {
      const r = draft.get<ApprovalRecord>(approvalRecordId(id));
      if (r?.state !== 'approved' || r.decision?.outcome !== 'once') return false;
      draft.set(approvalRecordId(id), { ...r, state: 'used', ended_at: now.toISOString() } satisfies ApprovalRecord);
      return true;
    });
  }

  /** Holds the request until a person answers, its wait runs out, its client leaves, or keyway stops. */
  async #hold(record: ApprovalRecord, ask: ApprovalAsk): Promise<ApprovalPass> {
    let gone = false;
    const answered = await new Promise<ApprovalRecord | undefined>((resolve) => {
      const timer = setTimeout(() => settle(this.#options.store.get<ApprovalRecord>(approvalRecordId(record.id))), ask.rule.waitMs);
      const stopListening = ask.onClientGone(() => {
        gone = true;
        settle(this.#options.store.get<ApprovalRecord>(approvalRecordId(record.id)));
      });
      const settle = (value: ApprovalRecord | undefined) => {
        clearTimeout(timer);
        stopListening();
        this.#waiters.delete(record.id);
        resolve(value);
      };
      this.#waiters.set(record.id, { resolve: settle });
      this.storeChanged(); // answered before the waiter was set
    });
    const now = this.#options.now();
    if (answered?.state === 'pending') {
      // Nobody answered (or the client left): written so, unless an answer lands first under the lock.
      const because = gone ? 'the client hung up while the request was held' : 'nobody answered in time';
      const ended = await this.#options.store.update((draft) => {
        const r = draft.get<ApprovalRecord>(approvalRecordId(record.id));
        if (r?.state !== 'pending') return r;
        const next: ApprovalRecord = { ...r, state: gone ? 'withdrawn' : 'expired', ended_at: now.toISOString(), ended_because: because };
        draft.set(approvalRecordId(record.id), next);
        return next;
      });
      if (ended?.state === 'withdrawn' || ended?.state === 'expired') {
        this.#line(ended, { outcome: ended.state, message: because });
        if (ended.state === 'withdrawn') throw new ProxyError('approval_expired', because, { grant: ask.grant });
        throw expiredError(ended);
      }
      return this.#released(ended, ask);
    }
    return this.#released(answered, ask);
  }

  /** The answer a held request got: go on (a yes, spent), or the refusal. */
  async #released(record: ApprovalRecord | undefined, ask: ApprovalAsk): Promise<ApprovalPass> {
    if (record === undefined || record.state === 'interrupted') {
      throw new ProxyError('approval_expired', 'keyway stopped while this request waited for a person', {
        grant: ask.grant,
        hint: 'retry once keyway is back',
      });
    }
    if (record.state === 'denied') throw denied(record);
    if (record.state === 'approved' && record.decision) {
      if (record.decision.outcome === 'once') await this.#spend(record.id, this.#options.now());
      return { id: record.id, by: record.decision.by, outcome: record.decision.outcome === 'window' ? 'window' : 'once' };
    }
    throw expiredError(record);
  }

  #line(record: ApprovalRecord, what: { outcome: string; by?: string | undefined; message?: string | undefined }): void {
    this.#options.audit.write(approvalLine(record, what)).catch((err: Error) => {
      this.#options.logger.error({ err: { message: err.message }, approval: record.id }, 'approval audit line could not be written');
    });
  }
}

/**
 * Whether a record answered this fresh question (an anomaly hold): the same rule asking too (or
 * none) and the same signals by name, in any order. Compared as data, never by `rule`, the text
 * shown: it is cut at 256 characters, so a long rule name leaves no signal in it, and a window
 * given to one signal would cover another. A record without signals answered no such question.
 */
function sameQuestion(record: ApprovalRecord, rule: RuleApproval): boolean {
  const names = signalNames(rule.signals);
  return names !== '' && signalNames(record.signals) === names && (record.asked_rule ?? null) === (rule.askedBy ?? null);
}

function signalNames(signals: ReadonlyArray<{ readonly name: string }> | undefined): string {
  return (signals ?? [])
    .map((s) => s.name)
    .sort()
    .join(',');
}

function ended(record: ApprovalRecord, now: Date): number {
  if (liveWindow(record, now)) return Number.POSITIVE_INFINITY;
  const at = record.decision?.until ?? record.ended_at ?? record.decision?.at ?? record.expires_at;
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? 0 : ms;
}

/** Still pending, or answered no within pending_ttl: the same request is told the same. */
function isOpenOrRefused(record: ApprovalRecord, now: Date): boolean {
  const state = effectiveState(record, now);
  return state === 'pending' || state === 'denied';
}

function describe(record: ApprovalRecord): string {
  return `${record.method} ${record.host}${record.port !== 443 ? `:${record.port}` : ''}${record.path} (approval ${record.id})`;
}

function required(record: ApprovalRecord): ProxyError {
  return new ProxyError(
    'approval_required',
    `${record.rule} needs a person's yes for ${record.method} ${record.path}: approval ${record.id} is waiting until ${record.expires_at}`,
    {
      grant: record.grant,
      hint: `once approved (keyway approvals approve ${record.id}), send the same request again, with the same body`,
      approval: { id: record.id, state: 'pending', expires_at: record.expires_at },
    },
  );
}

function denied(record: ApprovalRecord): ProxyError {
  const reason = record.decision?.reason;
  return new ProxyError(
    'approval_denied',
    `${record.decision?.by ?? 'a person'} denied ${record.method} ${record.path} (approval ${record.id})${reason ? `: ${reason}` : ''}`,
    {
      grant: record.grant,
      hint: 'a person said no to this request; do not retry it as it is',
      approval: { id: record.id, state: 'denied', expires_at: record.expires_at },
    },
  );
}

function expiredError(record: ApprovalRecord): ProxyError {
  return new ProxyError('approval_expired', `nobody answered approval ${record.id} for ${record.method} ${record.path} by ${record.expires_at}`, {
    grant: record.grant,
    hint: 'ask whoever runs keyway to watch for approvals (keyway approvals list), then retry',
    approval: { id: record.id, state: 'expired', expires_at: record.expires_at },
  });
}

/** Same host: the holder is alive while its pid runs and is not this process's earlier life. */
function sameHostAlive(self: ApprovalHolder): (holder: ApprovalHolder) => boolean {
  return (holder) => {
    if (holder.host !== self.host) return true; // another machine's: its own deadline and the sweep end it
    if (holder.pid === self.pid) return holder.started_at === self.started_at;
    try {
      process.kill(holder.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
}
