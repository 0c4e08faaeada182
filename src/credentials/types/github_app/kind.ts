import { createPrivateKey } from 'node:crypto';
import { KeywayError } from '../../../errors/index.ts';
import type { Grant } from '../../grant.ts';
import { appEndpointsGuard } from './guard.ts';
import { githubAppInjector, refuseInjectSettings } from '../../injectors/index.ts';
import type { GitHubAppMaterial } from './material.ts';
import { githubMinter } from './minter.ts';
import { blank, type GrantKind, type OwnFields, type ObjectInput, objectUsable } from '../kind.ts';

// github_app: a GitHub App's id and key; keyway signs app JWTs with the key and mints installation
// tokens (minter.ts), Bearer on the API and Basic x-access-token for git.

/** The app's id, private key (RSA, PEM: GitHub's .pem download) and optional installation id. Never quotes the key. */
function appKey({ obj, str }: ObjectInput): GitHubAppMaterial {
  const id = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined && !required) return undefined;
    const text = typeof v === 'number' ? String(v) : v;
    if (typeof text !== 'string' || !/^\d{1,20}$/.test(text)) throw new KeywayError('usage', `github_app secret: "${key}" must be a number`);
    return text;
  };
  const privateKey = str('privateKey', true)!;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    throw new KeywayError('usage', 'github_app secret: "privateKey" is not a PEM private key (the .pem GitHub gives)');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new KeywayError('usage', 'github_app secret: "privateKey" is not an RSA key (GitHub signs app JWTs with RS256)');
  return { appId: id('appId', true)!, privateKey, installationId: id('installationId', false) };
}

export interface GitHubAppSettings {
  apiUrl: string;
  /** The api_url's host (lower case): where the token goes as Bearer. */
  apiHost: string;
  /** The api_url's path segments (GitHub Enterprise Server: api, v3): its /app endpoints are below them. */
  apiBase: readonly string[];
  repositories: readonly string[] | undefined;
  permissions: Readonly<Record<string, string>> | undefined;
}

/** A github_app grant's settings, as its kind compiled them. */
const githubOf = (grant: Grant): GitHubAppSettings | undefined => (grant.type === 'github_app' ? (grant.settings as GitHubAppSettings) : undefined);

function githubSettingsOf(g: OwnFields<'github_app'>): GitHubAppSettings {
  const apiUrl = g.api_url ?? 'https://api.github.com';
  const url = new URL(apiUrl);
  const apiBase = url.pathname.split('/').filter(Boolean);
  return { apiUrl, apiHost: url.hostname.toLowerCase(), apiBase, repositories: g.repositories, permissions: g.permissions };
}

export const githubApp: GrantKind<'github_app'> = {
  type: 'github_app',
  shape: 'a github_app secret is a JSON object {"appId","privateKey","installationId"?}',
  object: appKey,
  usable: objectUsable<GitHubAppMaterial>((m) => typeof m.appId === 'string' && typeof m.privateKey === 'string' && !blank(m.privateKey)),
  issuer: {
    by: 'minted',
    token: (grant, material, mint) => {
      const github = githubOf(grant);
      if (typeof material !== 'object' || !('appId' in material) || github === undefined) return undefined;
      const { apiUrl, repositories, permissions } = github;
      return mint(githubMinter, { key: material, apiUrl, repositories, permissions });
    },
    // Bearer on the API host; Basic x-access-token on git hosts (git's own form).
    credential: (grant, token, host) =>
      host === undefined || host.toLowerCase() === githubOf(grant)?.apiHost
        ? { kind: 'token', value: token }
        : { kind: 'basic', username: 'x-access-token', password: token },
  },
  wire: {
    by: 'inject',
    injector: (inject) => {
      refuseInjectSettings(
        inject,
        'a github_app grant puts its installation token in Authorization itself; it takes no --header, --format, --query or --body',
        true,
      );
      return githubAppInjector();
    },
  },
  compile: (g) => {
    const github = githubSettingsOf(g);
    return { settings: github, guard: appEndpointsGuard(github) };
  },
  parsesConfigSecret: true,
};
