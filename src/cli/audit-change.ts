// Changes made from the command line go into the audit chain as the admin API's do (decision
// `admin`, the API's operation name as `action`), with who made them. The CLI appends its one line
// through the same writer as a running proxy: under the same inter-process lock on the file sink, so
// the chain stays whole with or without a proxy running; on the PostgreSQL sink, in a chain of its own
// (`cli@HOST`), since each chain's writer holds that chain's lock for as long as it runs.

import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { openAuditLog } from '../app/audit-log.ts';
import { carryOwedLine, type OwedChangeLine, riderFor, settleOwedLine } from '../credentials/store/change-rider.ts';
import type { AuditEvent } from '../audit/index.ts';
import { KeywayError } from '../errors/index.ts';
import type { Services } from '../open-home.ts';
import type { CommandIO } from './io.ts';

/** What one command changed: never a value, only names. */
export interface CliChange {
  /** The admin API's operationId for the same change (`grants.create`), or the command's own (`store.copy`). */
  action: string;
  grant?: string | null | undefined;
  agent?: string | null | undefined;
  /** The fields the change set (`domains,inject`); names only. */
  changed?: readonly string[] | undefined;
}

const MAX_ACTOR_CHARS = 128;

/** The names of the fields an input sets (a value that is not undefined, false, or an object of nothing set). */
export function fieldsSet(input: Readonly<Record<string, unknown>>, skip: readonly string[] = []): string[] {
  const set = (value: unknown): boolean =>
    value !== undefined && value !== false && (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some(set));
  return Object.keys(input).filter((key) => !skip.includes(key) && set(input[key]));
}

/** Who is at the command line: KEYWAY_ACTOR (for a CI job or a wrapper naming its person), else OS user@host. */
export function cliActor(env: NodeJS.ProcessEnv): string {
  const named = env['KEYWAY_ACTOR'];
  // Control characters would let a value forge the look of a second line in a terminal reading the log.
  const clean = (text: string) =>
    text
      .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '')
      .trim()
      .slice(0, MAX_ACTOR_CHARS);
  if (named !== undefined && clean(named) !== '') return clean(named);
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = env['USER'] ?? env['LOGNAME'] ?? `uid ${process.getuid?.() ?? '?'}`;
  }
  return clean(`${user}@${hostname()}`);
}

/**
 * Runs `work` (a write to the store) and writes its audit line: after the change, or with the
 * refusal's code and message when keyway refused it. Fails closed as the proxy does: on a home in
 * use, an audit log that cannot be opened (its folder not writable, its database down or its chain
 * held) stops the command before anything changes. A new home's first write makes the home, then
 * its line. A refusal on a home whose store was never written leaves no line: the store's key would
 * have to be made to seal the chain's head, and a refused command must not create a home.
 */
export async function audited<T>(services: Services, io: CommandIO, change: CliChange | ((result: T) => CliChange), work: () => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  if (homeWasWritten(services)) await checkAuditable(services, io);
  // Every store write the change makes carries its line, owed (credentials/store/change-rider.ts):
  // killed before the line below, the next open writes it. A change whose line depends on its
  // result (a function) owes none. Its line (or the refusal's) carries the id the record names, so
  // a line written before a kill that left the record is found by the next open, not written again.
  const rider = typeof change === 'function' ? undefined : riderFor(owedLineOf(change, io), services.store);
  let result: T;
  try {
    result = rider === undefined ? await work() : await carryOwedLine(rider, work);
  } catch (err) {
    if (err instanceof KeywayError && typeof change !== 'function' && homeWasWritten(services)) {
      const written = await writeLine(services, io, change, startedAt, { code: err.code, message: err.message }, rider?.lineId).then(
        () => true,
        (lost: Error) => {
          io.err(`keyway: warning: ${lost.message}`);
          return false;
        },
      );
      // A change that wrote part of itself before it was refused has the refusal's line: its owed one goes.
      if (written && rider !== undefined) await settleOwedLine(services.store, rider).catch(() => undefined);
    }
    throw err;
  }
  await writeLine(services, io, typeof change === 'function' ? change(result) : change, startedAt, null, rider?.lineId);
  if (rider !== undefined) await settleOwedLine(services.store, rider);
  return result;
}

/** The line a change owes while it runs, as writeLine writes it. */
function owedLineOf(change: CliChange, io: CommandIO): OwedChangeLine {
  return {
    action: change.action,
    client: 'cli',
    actor: cliActor(io.env),
    agent: change.agent ?? null,
    grant: change.grant ?? null,
    ...(change.changed !== undefined && change.changed.length > 0 ? { changed: change.changed.join(',') } : {}),
    host: hostname(),
    port: 0,
  };
}

/** Opens the audit log and closes it again: the one way to know a line can be written before the change is made. */
async function checkAuditable(services: Services, io: CommandIO): Promise<void> {
  try {
    const log = await openAuditLog(services, io.env, { tableChain: `cli@${hostname()}` });
    await log.close();
  } catch (err) {
    throw new KeywayError('audit_invalid', `the audit log cannot be written (${reasonOf(err)}), so nothing was changed`);
  }
}

function reasonOf(err: unknown): string {
  return err instanceof KeywayError ? err.message : ((err as NodeJS.ErrnoException).code ?? 'an unexpected error');
}

function homeWasWritten(services: Services): boolean {
  return services.config.store.backend === 'postgres' || existsSync(services.paths.store);
}

async function writeLine(
  services: Services,
  io: CommandIO,
  change: CliChange,
  startedAt: number,
  refused: { code: string; message: string } | null,
  id: string = randomUUID(),
): Promise<void> {
  const host = hostname();
  const event: AuditEvent = {
    ts: new Date().toISOString(),
    id,
    agent: change.agent ?? null,
    grant: change.grant ?? null,
    decision: 'admin',
    code: (refused?.code ?? null) as AuditEvent['code'],
    method: null,
    host,
    port: 0,
    path: null,
    status: null,
    duration_ms: Math.round((performance.now() - startedAt) * 100) / 100,
    refreshed: false,
    client: 'cli',
    action: change.action,
    actor: cliActor(io.env),
    // A refused change changed nothing: its line has the refusal's code and message, and no `changed`.
    ...(refused === null && change.changed !== undefined && change.changed.length > 0 ? { changed: change.changed.join(',') } : {}),
    ...(refused !== null ? { message: refused.message } : {}),
  };
  try {
    await appendAuditLine(services, io.env, event);
  } catch (err) {
    // Rare past checkAuditable (the disk filled in between): the command fails, saying what is done.
    throw new KeywayError(
      'audit_invalid',
      `the audit line of this change could not be written (${reasonOf(err)}); the change itself ${refused ? 'was refused' : 'is made'}`,
    );
  }
}

/** Appends one line to the chain as the CLI does (the file sink's lock, or the `cli@HOST` table chain). */
export async function appendAuditLine(services: Services, env: NodeJS.ProcessEnv, event: AuditEvent): Promise<void> {
  const log = await openAuditLog(services, env, { tableChain: `cli@${hostname()}` });
  try {
    await log.write(event);
  } finally {
    await log.close();
  }
}
