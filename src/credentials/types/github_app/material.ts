// The github_app type's secret, as `keyway secrets set` takes it and the store keeps it.

/** A GitHub App's key (github_app): keyway signs app JWTs with it, never sends it. */
export interface GitHubAppMaterial {
  appId: string;
  privateKey: string;
  /** Absent: the app's only installation. */
  installationId?: string | undefined;
}
