/**
 * Built-in OAuth2 provider presets: how each service's authorization server works and which API
 * hosts its tokens are for. Pure data, taken from each provider's own documentation (`docs`).
 * Users extend or override these with `providers:` in the config.
 *
 * Conventions:
 * - Whether a provider rotates refresh tokens is noted in a comment only: keyway persists any
 *   returned refresh token, and the token endpoint handles the response quirks (Slack v2
 *   `authed_user`, GitHub form-encoded) for every provider alike, so no code reads either.
 * - `revoke_url` is set only where the endpoint takes the token in the request body (RFC 7009 or
 *   close to it); provider endpoints of another shape are named in a comment instead.
 * - Tenant-specific providers (Zendesk, Shopify, Okta, Auth0, Jira Server…) are not presets: their
 *   URLs depend on the customer's own host, so they belong in the config.
 */
export interface ProviderPreset {
  /** Display name, e.g. "Google". */
  name: string;
  authorize_url?: string;
  token_url: string;
  /** Only where the provider refreshes at another URL than `token_url` (Figma). */
  refresh_url?: string;
  revoke_url?: string;
  /** RFC 8628, only where the provider documents one. */
  device_authorization_url?: string;
  /** Default scopes for an agent, including what the provider needs to issue a refresh token. */
  scopes: string[];
  /** Only where the provider wants scopes joined by something other than a space. */
  scope_separator?: ',';
  /** API hosts the token is for: exact hosts or `*.` + a registrable domain. */
  domains: string[];
  /** How the token endpoint wants client credentials. */
  client_auth: 'basic' | 'body';
  /** Request body encoding at the token endpoint. */
  token_body: 'form' | 'json';
  /** Added to token requests (e.g. audience). */
  extra_params: Record<string, string>;
  /** Added to the authorization URL (e.g. access_type=offline). */
  authorize_params: Record<string, string>;
  /** Only where the provider requires a fixed loopback port. */
  redirect_port?: number;
  /** Environment variables SDKs read for this service's token. */
  env_names: string[];
  /** The provider's own documentation the values were taken from. */
  docs: string;
}

export const PROVIDER_PRESETS: Readonly<Record<string, ProviderPreset>> = Object.freeze({
  google: {
    name: 'Google',
    authorize_url: 'https://accounts.google.com/o/oauth2/v2/auth',
    token_url: 'https://oauth2.googleapis.com/token',
    revoke_url: 'https://oauth2.googleapis.com/revoke',
    // Google's device flow only allows a short list of scopes (no Gmail, limited Drive).
    device_authorization_url: 'https://oauth2.googleapis.com/device/code',
    // Identity only: add the API scopes the agent needs (Gmail, Drive, Calendar…) with --scopes.
    scopes: ['openid', 'email', 'profile'],
    domains: ['www.googleapis.com', '*.googleapis.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    // A refresh token is only issued with access_type=offline; prompt=consent re-issues it on reconnect.
    authorize_params: { access_type: 'offline', prompt: 'consent' },
    env_names: ['GOOGLE_OAUTH_ACCESS_TOKEN'],
    docs: 'https://developers.google.com/identity/protocols/oauth2/web-server',
  },
  github: {
    name: 'GitHub',
    authorize_url: 'https://github.com/login/oauth/authorize',
    token_url: 'https://github.com/login/oauth/access_token',
    // Revocation is DELETE https://api.github.com/applications/{client_id}/token with Basic auth, not RFC 7009.
    device_authorization_url: 'https://github.com/login/device/code',
    // Scopes apply to OAuth apps; GitHub Apps ignore them and use the app's permissions.
    scopes: ['repo', 'read:org'],
    // Not *.githubusercontent.com: release assets redirect to signed storage URLs that refuse an Authorization header.
    domains: ['api.github.com', 'uploads.github.com', 'raw.githubusercontent.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // OAuth-app tokens never expire; GitHub App user tokens expire and each refresh invalidates the old refresh token.
    env_names: ['GITHUB_TOKEN', 'GH_TOKEN'],
    docs: 'https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps',
  },
  gitlab: {
    name: 'GitLab',
    authorize_url: 'https://gitlab.com/oauth/authorize',
    token_url: 'https://gitlab.com/oauth/token',
    revoke_url: 'https://gitlab.com/oauth/revoke',
    device_authorization_url: 'https://gitlab.com/oauth/authorize_device', // GitLab 17.1+
    scopes: ['api'],
    domains: ['gitlab.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    env_names: ['GITLAB_TOKEN', 'GITLAB_ACCESS_TOKEN'],
    docs: 'https://docs.gitlab.com/api/oauth2/',
  },
  slack: {
    name: 'Slack',
    authorize_url: 'https://slack.com/oauth/v2/authorize',
    token_url: 'https://slack.com/api/oauth.v2.access',
    revoke_url: 'https://slack.com/api/auth.revoke', // Slack method taking `token`, not strictly RFC 7009
    // `scope` asks for bot scopes; the agent acts as the user, whose token comes back under authed_user.
    scopes: [],
    scope_separator: ',',
    domains: ['slack.com', 'files.slack.com'],
    client_auth: 'basic', // docs: prefer HTTP Basic over client_id/client_secret parameters
    token_body: 'form',
    extra_params: {},
    authorize_params: { user_scope: 'channels:history,channels:read,chat:write,users:read,search:read' },
    // With token rotation enabled each refresh revokes the refresh token used; without it there is none.
    env_names: ['SLACK_USER_TOKEN', 'SLACK_BOT_TOKEN'],
    docs: 'https://docs.slack.dev/authentication/installing-with-oauth',
  },
  microsoft: {
    name: 'Microsoft',
    // `common` accepts work, school and personal accounts; single-tenant apps put their tenant id here.
    authorize_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    token_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    // No RFC 7009 endpoint; sessions are revoked with Graph POST /me/revokeSignInSessions.
    device_authorization_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    scopes: ['openid', 'offline_access', 'User.Read'], // offline_access is what yields a refresh token
    domains: ['graph.microsoft.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // A refresh returns a new refresh token, but the old one is not revoked (it stays valid until it expires).
    env_names: [],
    docs: 'https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow',
  },
  atlassian: {
    name: 'Atlassian',
    authorize_url: 'https://auth.atlassian.com/authorize',
    token_url: 'https://auth.atlassian.com/oauth/token',
    // No revocation endpoint is documented for 3LO apps.
    scopes: ['offline_access', 'read:me', 'read:jira-work', 'write:jira-work', 'read:jira-user'],
    // 3LO tokens work only through the gateway (api.atlassian.com/ex/jira/{cloudId}/…), not on *.atlassian.net.
    domains: ['api.atlassian.com'],
    client_auth: 'body',
    token_body: 'json',
    extra_params: {},
    authorize_params: { audience: 'api.atlassian.com', prompt: 'consent' },
    // Refresh tokens rotate: rotating refresh tokens.
    env_names: [],
    docs: 'https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/',
  },
  notion: {
    name: 'Notion',
    authorize_url: 'https://api.notion.com/v1/oauth/authorize',
    token_url: 'https://api.notion.com/v1/oauth/token',
    revoke_url: 'https://api.notion.com/v1/oauth/revoke', // JSON body, Basic auth
    scopes: [], // Notion has no scopes: the user picks pages at consent
    domains: ['api.notion.com'], // every API call also needs a Notion-Version header (sent by the client)
    client_auth: 'basic',
    token_body: 'json',
    extra_params: {},
    authorize_params: { owner: 'user' },
    // Refresh tokens rotate: refresh returns a new access token and a new refresh token.
    env_names: ['NOTION_TOKEN'],
    docs: 'https://developers.notion.com/docs/authorization',
  },
  linear: {
    name: 'Linear',
    authorize_url: 'https://linear.app/oauth/authorize',
    token_url: 'https://api.linear.app/oauth/token',
    revoke_url: 'https://api.linear.app/oauth/revoke', // unsure: exact request shape (token in body vs bearer header)
    scopes: ['read', 'write'],
    scope_separator: ',', // docs: "Comma separated list of scopes"
    domains: ['api.linear.app'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: docs describe refresh tokens (mandatory since 2026-04-01) without saying.
    env_names: ['LINEAR_API_KEY'],
    docs: 'https://linear.app/developers/oauth-2-0-authentication',
  },
  dropbox: {
    name: 'Dropbox',
    authorize_url: 'https://www.dropbox.com/oauth2/authorize',
    token_url: 'https://api.dropboxapi.com/oauth2/token',
    // Revocation is POST https://api.dropboxapi.com/2/auth/token/revoke authorized with the token itself, not RFC 7009.
    scopes: ['account_info.read', 'files.metadata.read', 'files.content.read'],
    domains: ['api.dropboxapi.com', 'content.dropboxapi.com', 'notify.dropboxapi.com'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: { token_access_type: 'offline' }, // without it Dropbox issues no refresh token
    // Refresh tokens do not rotate: long-lived refresh token, not returned again on refresh.
    env_names: [],
    docs: 'https://developers.dropbox.com/oauth-guide',
  },
  box: {
    name: 'Box',
    authorize_url: 'https://account.box.com/api/oauth2/authorize',
    token_url: 'https://api.box.com/oauth2/token',
    revoke_url: 'https://api.box.com/oauth2/revoke',
    scopes: [], // the app's configured scopes apply when none are requested
    domains: ['api.box.com', 'upload.box.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: refresh tokens are single use.
    env_names: [],
    docs: 'https://developer.box.com/guides/authentication/oauth2/',
  },
  zoom: {
    name: 'Zoom',
    authorize_url: 'https://zoom.us/oauth/authorize',
    token_url: 'https://zoom.us/oauth/token',
    revoke_url: 'https://zoom.us/oauth/revoke',
    // unsure: URL not confirmed; Zoom's device grant is for private apps and must be enabled by Zoom support.
    device_authorization_url: 'https://zoom.us/oauth/devicecode',
    scopes: [], // granular scopes are configured on the app
    domains: ['api.zoom.us'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: each refresh returns a new refresh token and invalidates the old one.
    env_names: [],
    docs: 'https://developers.zoom.us/docs/integrations/oauth/',
  },
  spotify: {
    name: 'Spotify',
    authorize_url: 'https://accounts.spotify.com/authorize',
    token_url: 'https://accounts.spotify.com/api/token',
    // No revocation endpoint is documented.
    scopes: ['user-read-private', 'user-read-email', 'playlist-read-private', 'user-library-read', 'user-read-playback-state'],
    domains: ['api.spotify.com'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: "a new refresh token might be returned too".
    env_names: [],
    docs: 'https://developer.spotify.com/documentation/web-api/tutorials/code-flow',
  },
  salesforce: {
    name: 'Salesforce',
    // Sandboxes use test.salesforce.com, and a My Domain host works too: override with providers:.
    authorize_url: 'https://login.salesforce.com/services/oauth2/authorize',
    token_url: 'https://login.salesforce.com/services/oauth2/token',
    revoke_url: 'https://login.salesforce.com/services/oauth2/revoke',
    // Salesforce's device flow is a response_type=device_code call on the token endpoint, not RFC 8628.
    scopes: ['api', 'refresh_token'],
    // The API is on the org's instance_url; legacy instance hosts (na1.salesforce.com…) must be added.
    domains: ['*.my.salesforce.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens do not rotate: refresh token rotation is an opt-in app setting, off by default.
    env_names: [],
    docs: 'https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm',
  },
  hubspot: {
    name: 'HubSpot',
    authorize_url: 'https://app.hubspot.com/oauth/authorize',
    token_url: 'https://api.hubapi.com/oauth/v3/token', // v1 (/oauth/v1/token) is deprecated on 2027-02-16
    // Refresh tokens are deleted with a HubSpot-specific call, not RFC 7009.
    scopes: ['oauth', 'crm.objects.contacts.read'],
    domains: ['api.hubapi.com'],
    client_auth: 'body', // v3 requires every parameter in the form body
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    env_names: [],
    docs: 'https://developers.hubspot.com/docs/api-reference/auth-oauth-v3/guide',
  },
  xero: {
    name: 'Xero',
    authorize_url: 'https://login.xero.com/identity/connect/authorize',
    token_url: 'https://identity.xero.com/connect/token',
    revoke_url: 'https://identity.xero.com/connect/revocation',
    // unsure: apps created after Xero's 2026 scope change may need granular accounting scopes instead.
    scopes: ['offline_access', 'openid', 'profile', 'email', 'accounting.transactions', 'accounting.contacts'],
    domains: ['api.xero.com'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    env_names: [],
    docs: 'https://developer.xero.com/documentation/guides/oauth2/auth-flow',
  },
  quickbooks: {
    name: 'QuickBooks Online',
    authorize_url: 'https://appcenter.intuit.com/connect/oauth2',
    token_url: 'https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer',
    revoke_url: 'https://developer.api.intuit.com/v2/oauth2/tokens/revoke', // takes a JSON body {"token": …} with Basic auth
    scopes: ['com.intuit.quickbooks.accounting'],
    domains: ['quickbooks.api.intuit.com', 'sandbox-quickbooks.api.intuit.com'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    env_names: [],
    docs: 'https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0',
  },
  reddit: {
    name: 'Reddit',
    authorize_url: 'https://www.reddit.com/api/v1/authorize',
    token_url: 'https://www.reddit.com/api/v1/access_token',
    revoke_url: 'https://www.reddit.com/api/v1/revoke_token',
    scopes: ['identity', 'read'],
    domains: ['oauth.reddit.com'], // Reddit also refuses requests without a descriptive User-Agent
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: { duration: 'permanent' }, // without it no refresh token is issued
    // Refresh-token rotation unsure: the docs do not say whether a refresh returns a new refresh token.
    env_names: [],
    docs: 'https://github.com/reddit-archive/reddit/wiki/OAuth2',
  },
  discord: {
    name: 'Discord',
    authorize_url: 'https://discord.com/oauth2/authorize',
    token_url: 'https://discord.com/api/oauth2/token',
    revoke_url: 'https://discord.com/api/oauth2/token/revoke',
    scopes: ['identify', 'guilds'],
    domains: ['discord.com'], // the API lives under discord.com/api
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: a refresh returns a refresh_token; whether the old one dies is not stated.
    env_names: [],
    docs: 'https://discord.com/developers/docs/topics/oauth2',
  },
  figma: {
    name: 'Figma',
    authorize_url: 'https://www.figma.com/oauth',
    token_url: 'https://api.figma.com/v1/oauth/token', // replaced https://www.figma.com/api/oauth/token in 2025
    refresh_url: 'https://api.figma.com/v1/oauth/refresh', // unsure: Figma refreshes at its own endpoint
    // No revocation endpoint is documented.
    scopes: ['current_user:read', 'file_content:read'],
    domains: ['api.figma.com'],
    client_auth: 'basic', // unsure: older examples put client_id/client_secret in the body
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: a refresh appears to return only a new access token.
    env_names: [],
    docs: 'https://developers.figma.com/docs/rest-api/authentication/',
  },
  asana: {
    name: 'Asana',
    authorize_url: 'https://app.asana.com/-/oauth_authorize',
    token_url: 'https://app.asana.com/-/oauth_token',
    revoke_url: 'https://app.asana.com/-/oauth_revoke',
    // An app is registered either for "full permissions" or for granular scopes, and a request for the
    // other kind fails: none by default, add granular scopes with --scopes if the app uses them.
    scopes: [],
    domains: ['app.asana.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens do not rotate: the refresh token is long-lived and not returned on refresh.
    env_names: [],
    docs: 'https://developers.asana.com/docs/oauth',
  },
  bitbucket: {
    name: 'Bitbucket Cloud',
    authorize_url: 'https://bitbucket.org/site/oauth2/authorize',
    token_url: 'https://bitbucket.org/site/oauth2/access_token',
    // No revocation endpoint is documented.
    scopes: [], // permissions are the checkboxes on the OAuth consumer
    domains: ['api.bitbucket.org'],
    client_auth: 'basic',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: a refresh returns a refresh_token; reuse of the old one is not stated.
    env_names: [],
    docs: 'https://developer.atlassian.com/cloud/bitbucket/oauth-2/',
  },
  twitch: {
    name: 'Twitch',
    authorize_url: 'https://id.twitch.tv/oauth2/authorize',
    token_url: 'https://id.twitch.tv/oauth2/token',
    revoke_url: 'https://id.twitch.tv/oauth2/revoke',
    device_authorization_url: 'https://id.twitch.tv/oauth2/device',
    scopes: ['user:read:email'],
    domains: ['api.twitch.tv'], // Helix also needs a Client-Id header (sent by the client)
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: "refresh tokens may change".
    // Token response: `scope` comes back as a JSON array.
    env_names: [],
    docs: 'https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/',
  },
  strava: {
    name: 'Strava',
    authorize_url: 'https://www.strava.com/oauth/authorize',
    token_url: 'https://www.strava.com/oauth/token',
    // Deauthorization is POST https://www.strava.com/oauth/deauthorize with `access_token`, not RFC 7009.
    scopes: ['read', 'activity:read_all'],
    scope_separator: ',', // docs: a comma-delimited string
    domains: ['www.strava.com'], // the API lives under www.strava.com/api/v3
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: a refresh may return a new refresh token; always keep the latest.
    env_names: [],
    docs: 'https://developers.strava.com/docs/authentication/',
  },
  x: {
    name: 'X (Twitter)',
    authorize_url: 'https://x.com/i/oauth2/authorize',
    token_url: 'https://api.x.com/2/oauth2/token',
    revoke_url: 'https://api.x.com/2/oauth2/revoke',
    scopes: ['tweet.read', 'users.read', 'offline.access'], // offline.access is what yields a refresh token
    domains: ['api.x.com', 'api.twitter.com'],
    client_auth: 'basic', // confidential clients must use Basic
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: a refresh returns a new refresh token; old-token behaviour is not stated.
    env_names: [],
    docs: 'https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code',
  },
  linkedin: {
    name: 'LinkedIn',
    authorize_url: 'https://www.linkedin.com/oauth/v2/authorization',
    token_url: 'https://www.linkedin.com/oauth/v2/accessToken',
    revoke_url: 'https://www.linkedin.com/oauth/v2/revoke',
    // Refresh tokens are issued only to approved partner apps.
    scopes: ['openid', 'profile', 'email', 'w_member_social'],
    domains: ['api.linkedin.com'],
    client_auth: 'body',
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh-token rotation unsure: docs say the refresh token's lifetime is not extended, not whether it changes.
    env_names: [],
    docs: 'https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow',
  },
  airtable: {
    name: 'Airtable',
    authorize_url: 'https://airtable.com/oauth2/v1/authorize', // PKCE is required
    token_url: 'https://airtable.com/oauth2/v1/token',
    // No revocation endpoint is documented.
    scopes: ['data.records:read', 'data.records:write', 'schema.bases:read'],
    domains: ['api.airtable.com'],
    client_auth: 'basic', // confidential clients send credentials in a Basic header
    token_body: 'form',
    extra_params: {},
    authorize_params: {},
    // Refresh tokens rotate: refresh tokens are single use.
    env_names: ['AIRTABLE_API_KEY'],
    docs: 'https://airtable.com/developers/web/api/oauth-reference',
  },
});

/**
 * Finds a preset by slug or display name, case-insensitively, also in forms such as
 * "SPOTIFY_OAUTH", "spotify-oauth2" or "Spotify".
 */
export function findPreset(name: string): { slug: string; preset: ProviderPreset } | undefined {
  const key = name
    .trim()
    .toLowerCase()
    .replace(/[\s_.]+/g, '-')
    .replace(/-oauth2?$/, '');
  if (Object.hasOwn(PROVIDER_PRESETS, key)) {
    const preset = PROVIDER_PRESETS[key];
    if (preset !== undefined) return { slug: key, preset };
  }
  for (const [slug, preset] of Object.entries(PROVIDER_PRESETS)) {
    if (preset.name.toLowerCase().replace(/[\s_.]+/g, '-') === key) return { slug, preset };
  }
  return undefined;
}
