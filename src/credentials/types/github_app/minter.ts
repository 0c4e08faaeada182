import { createPrivateKey } from 'node:crypto';
import { loadJose } from '../../jose.ts';
import type { GitHubAppMaterial } from './material.ts';
import type { MintContext, Minter } from '../../issuing/minter.ts';
import { TokenEndpointError } from '../../issuing/token-endpoint.ts';
import { postToken, safeOrigin } from '../../issuing/token-post.ts';

// A GitHub App's installation token (type github_app): an RS256 app JWT signed with the app's key
// (issued 60 s in the past for clock skew, 9 minutes long, as GitHub advises), exchanged at
// POST {api_url}/app/installations/{id}/access_tokens, narrowed to the grant's repositories and
// permissions. Kept and minted once per expiry (an hour) by MintedTokens.

export interface GitHubMint {
  key: GitHubAppMaterial;
  apiUrl: string;
  repositories: readonly string[] | undefined;
  permissions: Readonly<Record<string, string>> | undefined;
}

export const githubMinter: Minter<GitHubMint> = {
  describe: (spec) => `an installation token from ${safeOrigin(spec.apiUrl)}`,
  fingerprint: (spec) =>
    JSON.stringify([
      'github',
      spec.key.appId,
      spec.key.installationId ?? '',
      spec.apiUrl,
      spec.repositories ?? [],
      Object.entries(spec.permissions ?? {}).sort(),
    ]),
  // Installation tokens live an hour; the next is minted 5 minutes before.
  mintBeforeMs: 5 * 60_000,
  hint: "keyway retries with backoff; check the app's id and private key, that it is installed, and api_url",
  async mint(spec, context) {
    const jwt = await appJwt(spec.key, context.now);
    const installation = spec.key.installationId ?? (await onlyInstallation(spec, jwt, context));
    const body = {
      ...(spec.repositories ? { repositories: spec.repositories } : {}),
      ...(spec.permissions ? { permissions: spec.permissions } : {}),
    };
    const answer = await call(spec, `/app/installations/${installation}/access_tokens`, 'POST', jwt, context, body);
    const token = answer['token'];
    const expiresAt = Date.parse(String(answer['expires_at']));
    if (typeof token !== 'string' || token.trim() === '' || !Number.isFinite(expiresAt)) {
      throw new TokenEndpointError('bad_response', `${safeOrigin(spec.apiUrl)} answered without a token and its expires_at`);
    }
    return { accessToken: token, expiresAt };
  },
};

async function appJwt(key: GitHubAppMaterial, now: number): Promise<string> {
  const iat = Math.floor(now / 1000) - 60;
  const { SignJWT } = await loadJose();
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setIssuer(key.appId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 9 * 60)
    .sign(createPrivateKey(key.privateKey));
}

/** No installation id given: the app's only installation, or a clear error naming the choice. */
async function onlyInstallation(spec: GitHubMint, jwt: string, context: MintContext): Promise<string> {
  const answer = await call(spec, '/app/installations', 'GET', jwt, context);
  const list = Array.isArray(answer) ? answer : [];
  const ids = list.map((i) => (i as { id?: unknown }).id).filter((id): id is number => typeof id === 'number');
  if (ids.length === 1) return String(ids[0]);
  throw new TokenEndpointError(
    'rejected',
    ids.length === 0
      ? `the app is installed nowhere (${safeOrigin(spec.apiUrl)}): install it, then set the secret again`
      : `the app has ${ids.length} installations (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''}): give installationId in the secret`,
  );
}

/** One call to the GitHub API as the app; the answer's JSON, or a TokenEndpointError that names the status only. */
async function call(
  spec: GitHubMint,
  path: string,
  method: 'GET' | 'POST',
  jwt: string,
  context: MintContext,
  body?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const where = safeOrigin(spec.apiUrl);
  const { status, text } = await postToken(
    {
      url: `${spec.apiUrl.replace(/\/$/, '')}${path}`,
      method,
      headers: { accept: 'application/vnd.github+json', authorization: `Bearer ${jwt}`, 'user-agent': 'keyway', 'x-github-api-version': '2022-11-28' },
      body: body === undefined ? undefined : { json: body },
    },
    context,
    (failure) =>
      failure.kind === 'oversize' ? new TokenEndpointError('bad_response', 'the answer is over 64 KiB') : new TokenEndpointError(failure.kind, failure.message),
  );
  if (status === 401) throw new TokenEndpointError('rejected', `${where} refused the app's JWT (HTTP 401: a wrong app id or private key)`, { status });
  if (status === 404) throw new TokenEndpointError('rejected', `${where} knows no such installation (HTTP 404)`, { status });
  if (status === 422 || status === 403)
    throw new TokenEndpointError('rejected', `${where} refused the token request (HTTP ${status}: repositories or permissions the installation lacks?)`, {
      status,
    });
  if (status < 200 || status >= 300)
    throw new TokenEndpointError(status >= 500 ? 'server_error' : 'rejected', `${where} failed with HTTP ${status}`, { status });
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new TokenEndpointError('bad_response', `${where} answered ${status} with something that is not JSON`, { status });
  }
}
