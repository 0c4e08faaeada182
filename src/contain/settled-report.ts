import { join } from 'node:path';
import { type KeptChange, runId } from './overlay.ts';
import { shownName } from './shown-name.ts';

/** What the run's exit says of the command's changes: nothing when all reached the host. */
export function settledReport(settled: { applied: number; kept: readonly KeptChange[]; scratch: string }): string[] {
  if (settled.kept.length === 0) return [];
  const id = runId(settled.scratch);
  const lines = [
    `keyway: kept aside ${settled.kept.length} of the command's changes, which could run later outside (the rest, ${settled.applied}, are in place):`,
  ];
  for (const k of settled.kept.slice(0, 10)) lines.push(`keyway:   ${shownKept(k)}`);
  if (settled.kept.length > 10) lines.push(`keyway:   … and ${settled.kept.length - 10} more`);
  lines.push(`keyway: review them with \`keyway contain review ${id}\`, which says how to put them in place`);
  return lines;
}

/** A kept change as one line for a terminal: its path and why, each escaped (the command chose both: contain/shown-name.ts). */
export function shownKept(k: KeptChange): string {
  return `${k.kind === 'deleted' ? 'deleted ' : ''}${shownKeptPath(k)}${k.kind === 'dir' ? '/' : ''}: ${shownName(k.why)}`;
}

/** A kept change's full path, escaped; a name that is not UTF-8 from its bytes. */
export function shownKeptPath(k: KeptChange): string {
  return k.raw === undefined ? shownName(join(k.root, k.rel)) : shownName(Buffer.concat([Buffer.from(`${k.root}/`), Buffer.from(k.raw, 'base64')]));
}
