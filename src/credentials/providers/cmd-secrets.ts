import { type Config, secretVariables } from '../../config/index.ts';
import { commandKey, type SecretCommand } from '../../config/secret-command.ts';
import { ProxyError } from '../../errors/index.ts';
import { CommandFailed, runCommand } from './cmd-run.ts';

// Grants whose secret a command prints (secret: {cmd: …}): its output is kept in this process's
// memory for the grant's `cache` (never in the store, never on disk), one run in flight per grant
// (single flight: 200 requests on a cold cache run it once), run again early after an upstream 401.
// A run that fails is remembered for FAILURE_HOLD_MS, so a failing command is not started once per
// request; the value it printed before is dropped, never used past its cache.

const FAILURE_HOLD_MS = 1_000;
/** After a 401, a run that printed the same value again is trusted this long (other 401s join it rather than run again). */
const RERUN_HOLD_MS = 1_000;
/** The first line of stderr, at most this many characters, goes in the message. */
const STDERR_LINE_CHARS = 200;

export interface CommandSecretsOptions {
  /** keyway's environment: the command gets it without keyway's own secrets (commandEnv). */
  env: NodeJS.ProcessEnv;
  /** The config in force: which variables it names as secrets (env:NAME) changes with a reload. */
  config: () => Config;
  now?: (() => number) | undefined;
}

interface Entry {
  readonly key: string;
  value: string | undefined;
  /** The last value a run printed, kept only to scrub it from a failure's stderr: never served. */
  lastGood: string | undefined;
  expiresAt: number;
  /** When a run after a 401 last finished (RERUN_HOLD_MS). */
  reranAt: number;
  inFlight: Promise<string> | undefined;
  failure: { error: ProxyError; until: number } | undefined;
}

export class CommandSecrets {
  readonly #o: CommandSecretsOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: CommandSecretsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The command's output for this grant: cached, or from the one run in flight, or from a new run. */
  async get(grantId: string, command: SecretCommand): Promise<string> {
    const entry = this.#entry(grantId, command);
    if (entry.value !== undefined && this.#now() < entry.expiresAt) return entry.value;
    entry.value = undefined; // past its cache: never used again, whatever the next run does
    if (entry.inFlight) return entry.inFlight;
    if (entry.failure && this.#now() < entry.failure.until) throw entry.failure.error;
    return this.#run(grantId, command, entry);
  }

  /**
   * The upstream refused a value (`isRejected` knows it): runs the command again (joining a run in
   * flight), unless another request already did. Returns what it printed, changed or not.
   */
  async afterRejection(grantId: string, command: SecretCommand, isRejected: (value: string) => boolean): Promise<string> {
    const entry = this.#entry(grantId, command);
    if (entry.inFlight) return entry.inFlight;
    const fresh = entry.value !== undefined && this.#now() < entry.expiresAt;
    if (fresh && (!isRejected(entry.value!) || this.#now() - entry.reranAt < RERUN_HOLD_MS)) return entry.value!;
    if (entry.failure && this.#now() < entry.failure.until) throw entry.failure.error;
    const value = await this.#run(grantId, command, entry);
    entry.reranAt = this.#now();
    return value;
  }

  /** The grant's entry; a new (empty) one when its command or bounds changed (a reload). */
  #entry(grantId: string, command: SecretCommand): Entry {
    const key = commandKey(command);
    let entry = this.#entries.get(grantId);
    if (entry === undefined || entry.key !== key) {
      entry = { key, value: undefined, lastGood: undefined, expiresAt: 0, reranAt: 0, inFlight: undefined, failure: undefined };
      this.#entries.set(grantId, entry);
    }
    return entry;
  }

  #run(grantId: string, command: SecretCommand, entry: Entry): Promise<string> {
    entry.value = undefined;
    const run = runCommand(command, commandEnv(this.#o.env, this.#o.config())).then(
      (value) => {
        entry.value = value;
        entry.lastGood = value;
        entry.expiresAt = this.#now() + command.cacheMs;
        entry.failure = undefined;
        entry.inFlight = undefined;
        return value;
      },
      (err: unknown) => {
        const error = unavailable(grantId, command, err, entry.lastGood);
        entry.failure = { error, until: this.#now() + FAILURE_HOLD_MS };
        entry.inFlight = undefined;
        throw error;
      },
    );
    entry.inFlight = run;
    return run;
  }
}

/**
 * The environment a secret command runs in: keyway's, without keyway's own variables (KEYWAY_*:
 * the admin token, the master key, agent keys) and without every variable the config names as a
 * secret (env:NAME on grants, providers, agents, the store's URL). A password manager's own session
 * variables (OP_SESSION_*, VAULT_TOKEN, GH_TOKEN) pass: the command needs them.
 */
export function commandEnv(env: NodeJS.ProcessEnv, config: Config): NodeJS.ProcessEnv {
  const secret = secretVariables(config);
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || secret.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** 502 secret_unavailable: which program, why, and the first line of its stderr with any secret it knows of scrubbed. */
function unavailable(grantId: string, command: SecretCommand, err: unknown, previous: string | undefined): ProxyError {
  const program = command.argv[0]!;
  const reason = err instanceof CommandFailed ? err.message : 'could not be run';
  const secrets = err instanceof CommandFailed ? [previous, err.stdout] : [previous];
  const line = err instanceof CommandFailed ? stderrLine(err.stderr, secrets) : '';
  return new ProxyError('secret_unavailable', `grant "${grantId}": its secret command (${program}) ${reason}${line ? `: ${line}` : ''}`, {
    grant: grantId,
    hint: `run the command of grants.${grantId}.secret yourself to see why (it may need a sign-in), then retry`,
  });
}

/**
 * The first non-blank line of stderr, every secret-looking piece the command gave (its stdout, whole
 * and line by line, and the last good value) replaced first, then control characters dropped and
 * the line cut: a secret straddling the cut must not leave its start behind.
 */
export function stderrLine(stderr: string, secrets: ReadonlyArray<string | undefined>): string {
  let text = stderr;
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    needles.add(secret);
    needles.add(secret.trim());
    for (const line of secret.split(/\r?\n/)) if (line.trim().length >= 4) needles.add(line.trim());
    for (const field of jsonStrings(secret)) if (field.length >= 4) needles.add(field);
  }
  // Longest first: a line of a secret is inside the whole of it.
  for (const needle of [...needles].filter((n) => n.length > 0).sort((a, b) => b.length - a.length)) text = text.split(needle).join('[redacted]');
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  const clean = first.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ').trim();
  return clean.length <= STDERR_LINE_CHARS ? clean : `${clean.slice(0, STDERR_LINE_CHARS - 1)}…`;
}

/** The string values of a JSON object (material such as {"username","password"}), or none. */
function jsonStrings(text: string): string[] {
  if (!text.trimStart().startsWith('{')) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? Object.values(parsed).filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}
