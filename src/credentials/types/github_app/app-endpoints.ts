import { pathReadings } from '../../../policy/request-path.ts';

// A github_app grant's API host serves the app's own endpoints under /app: /app itself, its
// installations, and POST /app/installations/{id}/access_tokens, which mints installation tokens.
// Only keyway mints (with the app's key, which never leaves it); an agent's request there is refused
// whatever its rules say: it would at best be answered 401 (the endpoints want the app's JWT) and
// make keyway mint again, and at worst, were the app's key ever put on it, hand out tokens keyway
// does not narrow, track or revoke.

/** Whether `path` (normalised) is one of the app's endpoints below the API's base path (`/api/v3` on GHES). Read loosely: any case, `;params` dropped. */
export function isGithubAppEndpoint(path: string, apiBase: readonly string[]): boolean {
  const readings = pathReadings(path);
  // A path that cannot be read is not known to be safe.
  if (readings === undefined) return true;
  return readings.some((segments) => {
    const loose = segments.map((s) => s.replace(/;.*$/s, '').toLowerCase());
    if (loose.length <= apiBase.length) return false;
    if (!apiBase.every((part, i) => loose[i] === part.toLowerCase())) return false;
    return loose[apiBase.length] === 'app';
  });
}
