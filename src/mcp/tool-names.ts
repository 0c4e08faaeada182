// Tool names, as rules match them. The MCP spec's tool names are 1 to 128 of A-Z, a-z, 0-9, `_`,
// `-` and `.`: anything else (a Cyrillic `е` that looks like a Latin `e`, a space, a zero-width
// character) is refused outright rather than matched, since a server may normalise what a glob
// did not. Case: an allow glob matches the name exactly as written; a deny glob matches it in any
// case (`Delete_Issue` is refused by `delete_*`), so a server that ignores case cannot be used to
// slip past either kind.

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Why a tool name is refused, or undefined. */
export function toolNameProblem(name: string): string | undefined {
  if (TOOL_NAME.test(name)) return undefined;
  const shown = JSON.stringify(name.slice(0, 64));
  return `the tool name ${shown} is not 1 to 128 of A-Z, a-z, 0-9, _, - and . (the MCP tool name characters)`;
}

export interface NameGlob {
  readonly source: string;
  /** Exactly as written (allow rules). */
  matches(name: string): boolean;
  /** In any case (deny rules). */
  matchesAnyCase(name: string): boolean;
}

/** `search_*`, `*_issue`, `get_issue`: `*` is any run of characters (tool names are flat). */
export function compileNameGlob(source: string): NameGlob {
  const pattern = source
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  const exact = new RegExp(`^${pattern}$`);
  const anyCase = new RegExp(`^${pattern}$`, 'i');
  return { source, matches: (name) => exact.test(name), matchesAnyCase: (name) => anyCase.test(name) };
}
