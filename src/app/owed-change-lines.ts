// The audit lines changes left owed (credentials/store/change-rider.ts says why): a command or an
// admin API call killed after its store write and before its line. Written by whoever opens the
// audit log next (keyway start, any command that writes a line), beside the key changes' owed lines.
//
// Which records are finished here: one whose process is certainly gone (lock-holder.ts: on this
// host, not alive or another boot), or one older than PRESUMED_GONE_MS (its process on another
// host, sharing a PostgreSQL store: a line takes milliseconds to write). A record whose process
// runs is its own to finish. Each is claimed first, in a store write, so two processes opening the
// log at once write it once; a claim whose process died is taken over the same way.
//
// A record whose writer was killed after its line and before deleting it would have the line written
// twice (issue 86). So the record names the ids its line may carry (change-rider.ts: the change's
// own writer's from the start; the claim adds the id this process will write under, in the same
// store write): a claimed record's earlier ids are looked up in the audit log first, and found, the
// record goes with nothing written.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { AuditEvent, AuditSink } from '../audit/index.ts';
import { adminEvent } from '../audit/admin-event.ts';
import type { LineFinder } from '../audit/read/find-ids.ts';
import { OWED_LINE_PREFIX, type OwedLineOwner, type OwedLineRecord, ownerNow } from '../credentials/store/change-rider.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import { holderGone } from '../files/lock-holder.ts';

/** A record (or its claim) older than this is finished by anyone: its process is presumed gone. */
const PRESUMED_GONE_MS = 10 * 60_000;

function gone(owner: OwedLineOwner | undefined, now: number): boolean {
  if (owner === undefined) return true;
  const at = Date.parse(owner.at);
  return holderGone(owner.holder) || !Number.isFinite(at) || now - at > PRESUMED_GONE_MS;
}

/** A record this process claimed: the ids a line of it may already carry, and the one it writes under. */
interface Claimed {
  id: string;
  record: OwedLineRecord;
  earlier: readonly string[];
  lineId: string;
}

/**
 * Settles the owed lines this process could claim, each found in the log or written; returns how
 * many. A line that fails (or a log that cannot be read back) stays owed, claimed by this process
 * (its audit writer may keep the line and write it yet: the next open after it is gone looks for
 * it), and the error is thrown.
 */
export async function writeOwedChangeLines(
  log: Pick<AuditSink, 'write'>,
  store: Pick<CredentialStore, 'entries' | 'update'>,
  inLog: LineFinder,
): Promise<number> {
  const now = Date.now();
  const due = store.entries<OwedLineRecord>(OWED_LINE_PREFIX).filter(([, r]) => gone(r.owner, now) && gone(r.claim, now));
  if (due.length === 0) return 0;
  const claim = ownerNow();
  const claimed = await store.update((draft) => {
    const mine: Claimed[] = [];
    for (const [id] of due) {
      const record = draft.get<OwedLineRecord>(id);
      if (record === undefined || !gone(record.owner, now) || !gone(record.claim, now)) continue;
      const earlier = record.ids ?? [];
      const lineId = randomUUID();
      // Recorded before the line can be written: killed after it, the next open finds it by this id.
      draft.set(id, { ...record, ids: [...earlier, lineId], claim });
      mine.push({ id, record, earlier, lineId });
    }
    return mine;
  });
  let settled = 0;
  for (const { id, record, earlier, lineId } of claimed) {
    const written = earlier.length > 0 && (await inLog(earlier, new Date(record.owner.at)));
    if (!written) await log.write(owedEvent(record, lineId));
    await store.update((draft) => draft.delete(id));
    settled++;
  }
  return settled;
}

/** The line as the change's own writer would have written it, saying it was written late. */
function owedEvent(record: OwedLineRecord, id: string): AuditEvent {
  const { line, owner } = record;
  const event = adminEvent({
    host: line.host,
    port: line.port,
    client: line.client,
    action: line.action,
    agent: line.agent,
    grant: line.grant,
    method: line.method ?? null,
    path: line.path ?? null,
    ...(line.actor === undefined ? {} : { actor: line.actor }),
    ...(line.changed === undefined ? {} : { changed: line.changed }),
    message: `written at the next open (on ${hostname()}): the change was made at ${owner.at} by a process that stopped before its audit line`,
  });
  return { ...event, id };
}
