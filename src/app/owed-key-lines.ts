// The audit lines key changes left owed (credentials/store/owed-key-lines.ts says why and when):
// written by whoever opens the audit log next, keyway start or a command, then their notes removed.
// A note an earlier writer tried (it recorded the ids its line would carry) is looked up in the log
// first: found, the note goes and nothing is written again (issue 86: a writer killed between its
// line and the note's removal).
import { hostname } from 'node:os';
import type { AuditEvent, AuditSink } from '../audit/index.ts';
import { adminEvent } from '../audit/admin-event.ts';
import type { LineFinder } from '../audit/read/find-ids.ts';
import { claimOwedKeyLines, keyLinesOwed, type OwedKeyLine } from '../credentials/store/owed-key-lines.ts';

/**
 * Writes every owed line this process could claim (or finds it written); returns how many notes it
 * settled. A line that fails keeps its note claimed by this process (its audit writer keeps the line
 * and retries it; the next open after this process is gone finds it there, or writes it), and the
 * error is thrown.
 */
export async function writeOwedKeyLines(log: Pick<AuditSink, 'write'>, dataDir: string, inLog: LineFinder): Promise<number> {
  if (!keyLinesOwed(dataDir)) return 0;
  const claimed = await claimOwedKeyLines(dataDir);
  let settled = 0;
  let next = 0;
  try {
    for (; next < claimed.length; next++) {
      const owed = claimed[next]!;
      if (!(owed.tried.length > 0 && (await inLog(owed.tried, new Date(owed.line.at))))) {
        const id = await owed.attempt();
        if (id === undefined) continue; // another writer took the claim over: theirs to write
        await log.write(owedEvent(owed.line, id));
      }
      await owed.settled();
      settled++;
    }
  } catch (err) {
    // The one that failed stays claimed (above); those not tried yet are free for the next writer.
    for (const owed of claimed.slice(next + 1)) await owed.giveBack();
    throw err;
  }
  return settled;
}

/** The line as the change's own command writes it (cli/audit-change.ts), or as keyway's own when the next open finished it. */
function owedEvent(line: OwedKeyLine, id: string): AuditEvent {
  return {
    ...adminEvent({
      host: hostname(),
      client: line.actor === undefined ? 'keyway' : 'cli',
      action: line.action,
      ...(line.actor === undefined ? {} : { actor: line.actor }),
      changed: line.changed,
      ...(line.message === undefined ? {} : { message: `${line.message} (${line.at})` }),
    }),
    id,
  };
}
