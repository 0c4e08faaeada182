import { describe, expect, it } from 'vitest';
import { isGithubAppEndpoint } from './app-endpoints.ts';

describe("a github_app grant's /app endpoints", () => {
  it('are found below the API base, in any case and with ;params', () => {
    for (const path of ['/app', '/app/', '/app/installations/1/access_tokens', '/App/installations', '/app;v=1/hook/config'])
      expect(isGithubAppEndpoint(path, []), path).toBe(true);
    expect(isGithubAppEndpoint('/api/v3/app/installations/7/access_tokens', ['api', 'v3'])).toBe(true);
    expect(isGithubAppEndpoint('/API/V3/app', ['api', 'v3'])).toBe(true);
  });

  it('leave the rest of the API alone', () => {
    for (const path of ['/', '/apps/octo-app', '/applications/grants', '/repos/acme/app', '/app-manifests/x/conversions'])
      expect(isGithubAppEndpoint(path, []), path).toBe(false);
    // On GHES, /app at the root is not the API's.
    expect(isGithubAppEndpoint('/app/installations', ['api', 'v3'])).toBe(false);
  });
});
