// Human log lines for a terminal: `12:04:31 INFO  keyway is listening proxy=127.0.0.1:8787`. pino
// writes one JSON line per record (already redacted, see logger.ts); this turns each into text.
// A dozen lines instead of pino-pretty, which brings its own dependencies and a worker thread for
// what is only a different rendering of fields keyway already chose.
import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
// Fields every line has, shown in the prefix or not at all.
const FRAME = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

export function formatLogLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd(); // not pino's: shown as it is
  }
  const time = typeof record['time'] === 'number' ? new Date(record['time']).toTimeString().slice(0, 8) : '--:--:--';
  const level = (LEVELS[record['level'] as number] ?? String(record['level'])).padEnd(5);
  const fields = Object.entries(record)
    .filter(([k]) => !FRAME.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [time, level, String(record['msg'] ?? ''), ...fields].join(' ').trimEnd();
}

/** A pino destination that writes each record as a human line through `writeLine`. */
export function prettyDestination(writeLine: (line: string) => void): DestinationStream {
  return { write: (chunk: string) => writeLine(formatLogLine(chunk)) };
}
