// What the primary and its workers say to each other over the IPC channel (proxy.workers).
// Every message is a plain object with a `t` (its type), serialized as JSON by Node's IPC. Nothing
// here holds a secret: options are paths and addresses, the config names its secrets by reference
// only (env:NAME, file:PATH: each process reads them), rate scopes are names and figures from the
// config, stats are counts, spend is names (agent, grant, end user, model) and counts, and audit lines
// (a refusal's, a worker's) are what the audit file gets (redacted).
import type { PolicyFileText } from '../../policy/cedar/load.ts';
import type { Config, ListenAddress } from '../../config/index.ts';
import type { AuditEvent } from '../../audit/record.ts';
import type { RateLimit } from '../../config/limits.ts';
import type { LimitScope } from '../../policy/rate-limits.ts';
import type { BudgetConfig } from '../../config/spend.ts';
import type { SpendScope } from '../../spend/core/ledger.ts';
import type { UsageReading } from '../../spend/core/usage.ts';

/** What a worker is started with: where the home is, and the addresses its listeners take. */
export interface WorkerStart {
  readonly index: number;
  readonly home: string;
  readonly configFile: string | undefined;
  /** The proxy's address: the config's (or --listen) for the first worker, the port it bound for the rest. */
  readonly listen: ListenAddress | undefined;
  /** proxy.transparent's listeners, likewise. */
  readonly transparent: { readonly tls?: ListenAddress | undefined; readonly http?: ListenAddress | undefined };
  /** Log lines as the primary writes them. */
  readonly logFormat: 'json' | 'pretty';
  /** Ports a worker must never connect to (the admin listener, once bound). */
  readonly ownPorts: readonly number[];
  /** The config the primary runs (loaded and validated there): the worker never reads the file. */
  readonly config: Config;
  /** The Cedar files' texts the primary read with that config (policy/cedar/load.ts): the worker reads no policy file either. */
  readonly policyTexts: readonly PolicyFileText[];
}

/** Where a worker's listeners are bound, once they are. */
export interface WorkerBound {
  readonly proxy: ListenAddress;
  readonly transparent: { readonly tls?: ListenAddress | undefined; readonly http?: ListenAddress | undefined };
}

/** A scope as the primary's rate buckets need it: its key, whose it is, and its rate. */
export interface RateScope {
  readonly kind: LimitScope['kind'];
  readonly name: string;
  readonly key: string;
  readonly rate: RateLimit;
}

/** A metered answer as it crosses to the primary's spend ledger (a Date does not survive JSON). */
export interface WireSpendEntry extends SpendScope {
  readonly atMs: number;
  readonly reading: UsageReading;
  readonly cost_usd: number | null;
}

/** A budget's standing as it crosses back (spend/core/ledger.ts BudgetStanding). */
export interface WireStanding {
  readonly budget: BudgetConfig;
  readonly scope: string;
  readonly used: number;
  readonly limit: number;
  readonly resetsAtMs: number;
}

export interface WireVerdict {
  readonly over: WireStanding | null;
  readonly warn: readonly WireStanding[];
}

/** Worker to primary. */
export type FromWorker =
  /** Listening on `bound`. */
  | { t: 'ready'; bound: WorkerBound }
  /** Start failed (a port in use, a bad store): the one line to print, and its KeywayError code; the worker exits after sending it. */
  | { t: 'failed'; code: string | null; message: string }
  /** Take one token from each scope's bucket, or none (policy/rate-limits.ts); answered with `verdict`. */
  | { t: 'rates'; id: number; scopes: RateScope[]; nowMs: number }
  /** A metered answer's usage, for the primary's spend ledger (shared-spend.ts); answered with `spend-added` once durable. */
  | { t: 'spend-add'; id: number; entry: WireSpendEntry }
  /** The budgets on `scope` and where each stands (sent only when a budget applies); answered with `spend-verdict`. */
  | { t: 'spend-check'; id: number; scope: SpendScope; nowMs: number }
  /** An answer to the primary's request `id`. */
  | { t: 'reply'; id: number; value: unknown }
  /** A refusal's audit line (decision deny), for the primary's refusal budget to write in full or count (shared-refusals.ts). */
  | { t: 'refusal'; event: AuditEvent }
  /**
   * Audit lines for the primary's writer, the one writer of the file (shared-audit.ts): each body
   * serialised, with its flags (AUDIT_URGENT, AUDIT_PROMISED), and the injected requests this worker
   * has in flight now; answered with `audit-done`.
   */
  | { t: 'audit'; id: number; bodies: string[]; flags: number[]; reserved: number };

/** Primary to worker. */
export type FromPrimary =
  | { t: 'start'; start: WorkerStart }
  /** `index`: the first scope whose bucket is empty, or -1 when every bucket gave a token. */
  | { t: 'verdict'; id: number; index: number; retryAfterMs: number }
  /** The primary's ledger's verdict on `spend-check` `id`, or why it has none. */
  | { t: 'spend-verdict'; id: number; verdict: WireVerdict | null; error?: string }
  /** `spend-add` `id` is counted and journaled (the answer's end may go to the agent), or why it could not be journaled. */
  | { t: 'spend-added'; id: number; error?: string }
  /** Questions the worker answers with `reply`: its stats, its metrics (prom-client JSON), a reload to `config` (its outcome). */
  | { t: 'ask'; id: number; what: 'stats' | 'metrics' }
  | { t: 'ask'; id: number; what: 'reload'; config: Config; policyTexts: readonly PolicyFileText[] }
  /** A port the proxy must never connect to (the admin listener, bound after the workers). */
  | { t: 'own-port'; port: number }
  /** Stop accepting, let requests in flight finish for up to drainMs, close and exit 0. */
  | { t: 'stop'; drainMs: number }
  /**
   * Message `id`'s lines are in the file (those a request waits on) or queued there (the rest),
   * but for the indexes in `failed`, refused with `error`; `healthy`: the primary's writer now.
   */
  | { t: 'audit-done'; id: number; failed: number[]; error: string | null; healthy: boolean }
  /** The primary's audit writer turned healthy or unhealthy (a fault, the room left). */
  | { t: 'audit-health'; healthy: boolean };

function hasType(message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { t?: unknown }).t === 'string';
}

/** Whether an IPC message came from one of our workers (and is not Node's own). */
export function isFromWorker(message: unknown): message is FromWorker {
  return hasType(message);
}

/** Whether an IPC message came from the primary. */
export function isFromPrimary(message: unknown): message is FromPrimary {
  return hasType(message);
}
