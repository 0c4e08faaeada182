// "did you mean …?" for a mistyped command or option: the closest known name by edit distance,
// offered only when it is close enough that the guess is likely right (a typo, not another word).
// The distance and the guess are shared with the config's messages (src/edit-distance.ts).

import { closestName, editDistance } from '../edit-distance.ts';

export { closestName, editDistance };

/** `: did you mean "x"?`, or nothing when no known name is close. */
export function didYouMean(typed: string, known: readonly string[], shown: (name: string) => string = (name) => name): string {
  const guess = closestName(typed, known);
  return guess === undefined ? '' : `: did you mean "${shown(guess)}"?`;
}

/**
 * A subcommand the command does not have: said once (the caller's line already names the command),
 * with the nearest one and the list, as the top level does for commands.
 */
export function unknownSubcommand(typed: string | undefined, known: readonly string[]): string {
  if (typed === undefined) return `expected a subcommand (one of: ${known.join(', ')})`;
  return `unknown subcommand "${typed}"${didYouMean(typed, known)} (expected one of: ${known.join(', ')})`;
}
