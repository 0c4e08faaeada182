// jose, loaded the first time a token is signed or verified, not at start: most keyways (and every
// `keyway run --contain` that needs none of the JWT kinds or identities) never use it, and its 46
// modules were a tenth of what a contained run's keyway loaded before serving (issue 62).

let loading: Promise<typeof import('jose')> | undefined;

export function loadJose(): Promise<typeof import('jose')> {
  loading ??= import('jose');
  return loading;
}
