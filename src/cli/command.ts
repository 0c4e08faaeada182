import type { CommandIO } from './io.ts';

export interface Command {
  /** e.g. "grants", or "start". */
  name: string;
  usage: string;
  /** Returns the process exit code. */
  run(argv: string[], io: CommandIO): Promise<number>;
}
