// An upstream that refuses a token for want of a scope says so in WWW-Authenticate (RFC 6750 3.1):
//   Bearer error="insufficient_scope", scope="repo workflow"
// keyway turns that into the command that would get the scope: a re-consent that keeps the grant.

/** Scope tokens as a hint may print them: no quote, space or shell metacharacter (Google's are URLs). */
const SCOPE = /^[A-Za-z0-9._:/+=@-]{1,200}$/;
const MAX_SCOPES = 10;

/** The auth-params of a WWW-Authenticate value (the first of each name), or undefined past a sane size. */
function challengeParams(header: string | string[] | undefined): Map<string, string> | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (text.length > 4096) return undefined;
  const params = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z_][\w-]*)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)/g)) {
    const name = m[1]!.toLowerCase();
    if (!params.has(name)) params.set(name, m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!);
  }
  return params;
}

/** Whether the challenge says the token lacks a scope (a fresh token would lack it too: no refresh helps). */
export function lacksScope(header: string | string[] | undefined): boolean {
  return challengeParams(header)?.get('error') === 'insufficient_scope';
}

/** The scopes an `insufficient_scope` challenge asks for; undefined when the header is not one, or names none it can print. */
export function insufficientScope(header: string | string[] | undefined): string[] | undefined {
  const params = challengeParams(header);
  if (params?.get('error') !== 'insufficient_scope') return undefined;
  const scopes = (params.get('scope') ?? '').split(' ').filter(Boolean);
  if (scopes.length === 0 || scopes.length > MAX_SCOPES || !scopes.every((s) => SCOPE.test(s))) return undefined;
  return scopes;
}

/**
 * The command that adds what the upstream asked for to grant `grantId`: the scopes it lacks (all of
 * those asked when it seems to have them: the provider knows better), merged by `connect` with the
 * ones it has.
 */
export function reconsentCommand(provider: string, grantId: string, wanted: readonly string[], had: readonly string[]): string {
  const missing = wanted.filter((s) => !had.includes(s));
  return `keyway connect ${provider} --grant ${grantId} --scopes ${(missing.length > 0 ? missing : wanted).join(',')}`;
}
