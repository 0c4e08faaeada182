import { ProxyError } from '../../../errors/index.ts';
import { overridePaths } from '../../../policy/path-override.ts';
import type { RequestGuard } from '../../grant.ts';
import { isGithubAppEndpoint } from './app-endpoints.ts';

/**
 * A GitHub App's /app endpoints on its API host, at the path or at one an override header names
 * (X-Original-URL and its kin): refused, since only keyway mints installation tokens with the key.
 */
export function appEndpointsGuard(github: { readonly apiHost: string; readonly apiBase: readonly string[] }): RequestGuard {
  return ({ grantId, host, path, headers }) => {
    if (host !== github.apiHost) return undefined;
    const named = overridePaths(headers);
    const paths = [path, ...(typeof named === 'string' ? [] : named.map((p) => p.path))];
    if (typeof named !== 'string' && !paths.some((p) => isGithubAppEndpoint(p, github.apiBase))) return undefined;
    return {
      rule: 'github_app: /app/**',
      error: new ProxyError(
        'policy_denied',
        `grant "${grantId}" refuses the app's own endpoints (/${[...github.apiBase, 'app'].join('/')}/…): only keyway mints installation tokens`,
        { grant: grantId, hint: 'call the API with the installation token keyway puts on each request; keyway mints and renews it' },
      ),
    };
  };
}
