import type { CommandIO } from './io.ts';

export interface Command {
  /** e.g. "grants", or "start". */
  name: string;
  usage: string;
  /** The arguments that are keyway's own, where --help is looked for (default: those before `--`). */
  ownArgs?(argv: string[]): string[];
  /** A --help that depends on the home (its config); when absent, usage is printed. */
  help?(argv: string[], io: CommandIO): Promise<string>;
  /** Returns the process exit code. */
  run(argv: string[], io: CommandIO): Promise<number>;
}
