import { join } from 'node:path';
import { type KeptChange, runId } from './overlay.ts';

/** What the run's exit says of the command's changes: nothing when all reached the host. */
export function settledReport(settled: { applied: number; kept: readonly KeptChange[]; scratch: string }): string[] {
  if (settled.kept.length === 0) return [];
  const id = runId(settled.scratch);
  const lines = [
    `keyway: kept aside ${settled.kept.length} of the command's changes, which could run later outside (the rest, ${settled.applied}, are in place):`,
  ];
  for (const k of settled.kept.slice(0, 10)) lines.push(`keyway:   ${k.kind === 'deleted' ? 'deleted ' : ''}${join(k.root, k.rel)}: ${k.why}`);
  if (settled.kept.length > 10) lines.push(`keyway:   … and ${settled.kept.length - 10} more`);
  lines.push(`keyway: review them with \`keyway contain review ${id}\`; put them in place with \`keyway contain review ${id} --apply\``);
  return lines;
}
