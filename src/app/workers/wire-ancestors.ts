// A delegated agent's ancestors on a spend message to the primary (issue 89): a plain array (IPC
// sends JSON), left out for a root agent so its messages stay as they were.

export function wireAncestors(ancestors: readonly string[] | undefined): string[] | undefined {
  return ancestors === undefined || ancestors.length === 0 ? undefined : [...ancestors];
}
