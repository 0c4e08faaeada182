// What a file writer found of the log when it opened it (file/log-files.ts settle()), said where it
// is seen: the app log for whoever watches keyway start, and, for a log that lost lines or its head
// file, an audit line of keyway's own, so the record itself says when it was noticed (a warning in
// the app log scrolls away; the gap in the chain stays, and verify keeps reporting it).

import type { SettledLog } from './file/log-files.ts';
import type { AuditEvent } from './record.ts';
import { adminEvent } from './admin-event.ts';

/** Where the findings are said; warn for what someone should look at. */
export interface FindingsLogger {
  warn(fields: object, message: string): void;
}

/** Logs what deserves a word, and returns the audit lines to write about it (none, usually). */
export function openFindings(found: SettledLog | Error, logger: FindingsLogger | undefined): AuditEvent[] {
  if (found instanceof Error) {
    const code = (found as NodeJS.ErrnoException).code ?? 'error';
    logger?.warn({ code }, 'the audit log could not be checked at start; its first batch will check it (a torn last line, the chain head)');
    return [];
  }
  const { recovered, headFile, logEnd, head } = found;
  if (recovered !== null) {
    logger?.warn(
      { file: recovered.file, offset: recovered.offset, bytes: recovered.bytes },
      `the audit log ended in a line cut short by a crash: its ${recovered.bytes} byte(s) were kept aside in logs/${recovered.file}, and a recovered line (seq ${head.seq}) stands in their place`,
    );
  }
  if (headFile.kind === 'ok' && headFile.head.seq > logEnd.seq) {
    const missing = headFile.head.seq - logEnd.seq;
    const message = `the audit log ends at seq ${logEnd.seq} but its head file records seq ${headFile.head.seq}: ${missing} line(s) are missing (the log deleted, cut, or restored from an older copy); the chain goes on from seq ${headFile.head.seq + 1}, and keyway audit verify reports the gap`;
    logger?.warn({ log_seq: logEnd.seq, head_seq: headFile.head.seq, missing }, message);
    return [note('audit.lines_missing', message)];
  }
  if (headFile.kind === 'missing' && logEnd.seq > 0) {
    const message = `the audit head file was missing while the log ends at seq ${logEnd.seq}: a tail removed before now cannot be ruled out; keyway recorded a new head`;
    logger?.warn({ log_seq: logEnd.seq }, message);
    return [note('audit.head_missing', message)];
  }
  if (headFile.kind === 'bad_mac' || headFile.kind === 'unreadable') {
    logger?.warn(
      { head: headFile.kind },
      'the audit head file does not authenticate (changed, or written under another master key); keyway audit verify reports it until the next head is written',
    );
  }
  return [];
}

/** keyway's own line about its log: not a request, not an operator's change. */
function note(action: string, message: string): AuditEvent {
  return adminEvent({ client: 'keyway', action, actor: 'keyway', message });
}
