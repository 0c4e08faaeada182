import { shownName } from './shown-name.ts';
import type { DroppedWrites } from './throwaway-home.ts';

/** What the run's exit says of the command's writes to its throwaway HOME: nothing when it wrote none. */
export function droppedReport(dropped: DroppedWrites): string[] {
  if (dropped.count === 0) return [];
  // The command chose the names: shown escaped, never as raw control bytes (contain/shown-name.ts).
  const shown = dropped.names.map((name) => shownName(`~/${name}`));
  const more = dropped.count > dropped.names.length ? `, … and ${dropped.count - dropped.names.length} more` : '';
  return [
    `keyway: dropped what the command wrote in its home (${shownName(dropped.home)} is an empty folder inside, gone when it exits; --allow-write a folder to keep what is written there): ${shown.join(', ')}${more}`,
  ];
}
