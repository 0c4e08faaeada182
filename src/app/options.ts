import type { PolicyFileText } from '../policy/cedar/load.ts';
import type { Logger } from 'pino';
import type { Config, ListenAddress } from '../config/index.ts';
import type { Resolver } from '../egress/resolve.ts';
import type { AuditEvent } from '../audit/record.ts';
import type { AuditLog } from '../audit/sink.ts';
import type { RateCounter } from '../policy/rate-limits.ts';
import type { SpendLedgerApi } from '../spend/core/ledger.ts';

export interface StartOptions {
  home: string;
  configFile?: string | undefined;
  /**
   * The config this process already loaded and validated from `configFile` (keyway run --contain
   * planned its sandbox on it): the keyway starts on this one instead of reading the file again in
   * a child. A reload still reads the file.
   */
  config?: Config | undefined;
  /**
   * `keyway start --fresh-store`: make a new empty store although the home has history (its store
   * file is missing while its audit log, head or key say it existed). Audited; never replaces a store.
   */
  freshStore?: boolean | undefined;
  /** Overrides proxy.listen (keyway start --listen). */
  listen?: ListenAddress | undefined;
  /** Overrides admin.listen; tests pass port 0. */
  adminListen?: ListenAddress | undefined;
  /** The clock for policy (time windows, leases): tests pin it. */
  now?: (() => Date) | undefined;
  /** The clock for OAuth token expiry and refresh backoff (epoch ms): tests move it forward instead of sleeping. */
  tokenClock?: (() => number) | undefined;
  /** Replaces the system resolver (after proxy.hosts): tests script DNS answers with it. */
  dns?: Resolver | undefined;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /**
   * Record this proxy in data/running (and data/proxy.json, unless another live one is there) so
   * the CLI and clients find it (default true). `contain`: recorded for `status` and `stop` only,
   * never pointed at (it serves one `keyway run --contain` command). A proxy started for one
   * command (`keyway fetch` when none runs) keeps itself to itself: false.
   */
  announce?: boolean | 'contain' | undefined;
  /** `keyway fetch`'s own proxy: the one-time key its request must carry (ProxyRuntime.callerKey). */
  callerKey?: string | undefined;
  /**
   * Run proxy.workers processes when it is above 1 (app/workers/): `keyway start` asks for it; a
   * proxy started for one command (fetch, run --contain) is always one process.
   */
  workers?: boolean | undefined;
  /** How log lines are written (keyway start --log-format): workers write theirs the same way. */
  logFormat?: 'json' | 'pretty' | undefined;
  /** Set in a worker process: how it differs from a keyway on its own. */
  worker?: WorkerRole | undefined;
  /** Request rates counted elsewhere: keyway run --contain's keyway asks the running keyway's buckets (contain/door-client.ts). */
  rates?: RateCounter | undefined;
  /** Refusals' audit lines handed to another keyway's refusal budget (keyway run --contain's keyway: the running one's); false when it could not. */
  refusals?: ((event: AuditEvent) => boolean) | undefined;
  /**
   * Told of every request this keyway counts: keyway run --contain's keyway hands them to the running
   * one's overview, and says a host it could not reach on the run's stderr.
   */
  tallies?: ((event: AuditEvent) => void) | undefined;
}

/**
 * A worker serves the proxy's listeners beside the other workers (SO_REUSEPORT) and nothing else:
 * no admin listener and no data/proxy.json entry (the primary has them), and request rates counted
 * by the primary's buckets.
 */
export interface WorkerRole {
  readonly index: number;
  /** proxy.transparent's addresses: the first worker's bound ports, for the others. */
  readonly transparent: { readonly tls?: ListenAddress | undefined; readonly http?: ListenAddress | undefined };
  readonly rates: RateCounter;
  /** Model spend counted and checked by the primary's one ledger (workers/shared-spend.ts). */
  readonly spend?: SpendLedgerApi | undefined;
  /** Hands a refusal's audit line to the primary, whose refusal budget counts all workers; false if it could not. */
  readonly refusals?: ((event: AuditEvent) => boolean) | undefined;
  /** The worker's audit log on the file sink: its lines go to the primary, the file's one writer (workers/shared-audit.ts). */
  readonly audit?: ((replica: string | undefined) => AuditLog) | undefined;
  /**
   * The config the primary loaded and validated, at start and after each reload: a worker never
   * reads the file itself, so every worker runs the primary's config (a file edited between two
   * reads would otherwise give them different rules and rate buckets).
   */
  readonly config: () => Config;
  /** Likewise the Cedar files' texts the primary read and checked (policy/cedar/load.ts), with that config. */
  readonly policyTexts?: (() => readonly PolicyFileText[]) | undefined;
}
