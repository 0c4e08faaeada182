import { displaySafe } from '../config/display-text.ts';
import { KeywayError } from '../errors/index.ts';

/** How a command talks to the terminal; tests and main() both provide one. */
export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
  /** Whether out and err are terminals (main.ts sets it; absent: neither, as in tests and pipes). */
  terminal?: { out: boolean; err: boolean };
}

export function usageError(message: string): KeywayError {
  return new KeywayError('usage', message);
}

export function printTable(io: CommandIO, rows: Array<Record<string, unknown>>, columns: string[]): void {
  if (rows.length === 0) {
    io.out('(none)');
    return;
  }
  // Cells hold what people and providers named (labels, accounts): shown with no control or bidi characters.
  const cell = (v: unknown) => displaySafe(v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  io.out(line(columns.map((c) => c.toUpperCase())));
  for (const row of rows) io.out(line(columns.map((c) => cell(row[c]))));
}

export function printJson(io: CommandIO, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

export async function readAllStdin(): Promise<string> {
  if (process.stdin.isTTY) throw usageError('expected the secret on standard input (pipe it in)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `keyway audit query | head -1`: once the reader closes the pipe, a write fails with EPIPE, which
 * Node raises as an 'error' event and, unhandled, a stack trace. The output is no longer wanted,
 * so the command ends quietly with 0, as `cat` and `grep` do under a shell without pipefail noise.
 * Other write errors end the command with one line on stderr.
 */
export function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (code) => process.exit(code)): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return exit(0);
    try {
      process.stderr.write(`keyway: cannot write output: ${err.code ?? err.message}\n`);
    } finally {
      exit(1);
    }
  });
}
