// The audit lines key changes left owed (credentials/store/owed-key-lines.ts says why and when):
// written by whoever opens the audit log next, keyway start or a command, then their notes removed.
import { hostname } from 'node:os';
import type { AuditEvent, AuditSink } from '../audit/index.ts';
import { adminEvent } from '../audit/admin-event.ts';
import { claimOwedKeyLines, keyLinesOwed, type OwedKeyLine } from '../credentials/store/owed-key-lines.ts';

/** Writes every owed line this process could claim; a line that fails is given back for the next writer, and the error thrown. */
export async function writeOwedKeyLines(log: Pick<AuditSink, 'write'>, dataDir: string): Promise<number> {
  if (!keyLinesOwed(dataDir)) return 0;
  const claimed = await claimOwedKeyLines(dataDir);
  let written = 0;
  try {
    for (const owed of claimed) {
      await log.write(owedEvent(owed.line));
      await owed.settled();
      written++;
    }
  } catch (err) {
    for (const owed of claimed.slice(written)) await owed.giveBack();
    throw err;
  }
  return written;
}

/** The line as the change's own command writes it (cli/audit-change.ts), or as keyway's own when the next open finished it. */
function owedEvent(line: OwedKeyLine): AuditEvent {
  return adminEvent({
    host: hostname(),
    client: line.actor === undefined ? 'keyway' : 'cli',
    action: line.action,
    ...(line.actor === undefined ? {} : { actor: line.actor }),
    changed: line.changed,
    ...(line.message === undefined ? {} : { message: `${line.message} (${line.at})` }),
  });
}
