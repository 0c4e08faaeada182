// A subscription login's token endpoint, as a stand-in: the refresh grant (RFC 6749 §6) with the
// vendor's body format (Claude and Codex post JSON, Google a form), rotating refresh tokens like
// Claude's and ChatGPT's logins do (a rotated-away one is `invalid_grant` from then on, as those
// servers answer a replay), and a count of refreshes, so a test can show that two agents sharing one
// login made one refresh. The access tokens it issues are what its model stand-in then accepts.
import { randomBytes } from 'node:crypto';
import type { StandinHandler, StandinRequest } from './server.ts';
import { sendJson } from './server.ts';

export interface TokenEndpointOptions {
  host: string;
  path: string;
  /** The refresh token valid at start (the one the test's grant or credential file holds). */
  refreshToken: string;
  /** An access token valid at start, if any (say, one a credential file holds that has not expired). */
  accessToken?: string;
  /** How the body must come: JSON (Claude, Codex) or a form (Google). */
  body: 'json' | 'form';
  /** The client_id the agent must send, when the vendor's endpoint checks one. */
  clientId?: string;
  /** The client_secret it must send too (Google's installed-app clients send theirs). */
  clientSecret?: string;
  /** Whether each refresh hands out a new refresh token (Claude, ChatGPT) or keeps it (Google). */
  rotate?: boolean;
  accessTtlSeconds?: number;
  /** The shape of the tokens it issues: a vendor prefix (`sk-ant-oat01-`), then random characters. */
  accessPrefix?: string;
  refreshPrefix?: string;
  /** Makes each access token (a JWT, for a client that reads its `exp`); a prefix and random characters otherwise. */
  mintAccess?: (ttlSeconds: number) => string;
  /** Members added to each answer (scope, token_type, an id_token made from the new tokens…). */
  extra?: (issued: { access_token: string; refresh_token: string }) => Record<string, unknown>;
  /**
   * A one-time authorization code it takes (grant_type authorization_code): the end of a login,
   * answered with a new access token and the refresh token valid at start.
   */
  authorizationCode?: string;
  /** How long to hold each answer, so two refreshes can overlap in a test. */
  delayMs?: number;
}

export interface RefreshAttempt {
  /** The refresh token presented, as the endpoint received it. */
  refreshToken: string;
  ok: boolean;
  reason?: string;
}

export interface TokenEndpoint {
  handler: StandinHandler;
  /** Every refresh asked for, granted or not. */
  attempts: RefreshAttempt[];
  /** Refreshes granted. */
  readonly refreshes: number;
  /** Authorization codes exchanged (logins). */
  readonly logins: number;
  /** The refresh token that works now. */
  readonly refreshToken: string;
  /** Every access token it issued (and the starting one), newest last. */
  readonly accessTokens: readonly string[];
  /** Whether `token` is an access token it issued that has not expired: what the model stand-in asks. */
  isValidAccess(token: string): boolean;
}

function fieldsOf(req: StandinRequest, format: 'json' | 'form'): Record<string, unknown> | undefined {
  const type = String(req.headers['content-type'] ?? '');
  if (format === 'json') {
    if (!/json/i.test(type) || typeof req.json !== 'object' || req.json === null) return undefined;
    return req.json as Record<string, unknown>;
  }
  if (!/x-www-form-urlencoded/i.test(type)) return undefined;
  return Object.fromEntries(new URLSearchParams(req.body.toString('utf8')));
}

export function tokenEndpoint(options: TokenEndpointOptions): TokenEndpoint {
  const rotate = options.rotate ?? true;
  const ttl = options.accessTtlSeconds ?? 3600;
  const access = new Map<string, number>();
  const accessOrder: string[] = [];
  if (options.accessToken !== undefined) {
    access.set(options.accessToken, Date.now() + ttl * 1000);
    accessOrder.push(options.accessToken);
  }
  let current = options.refreshToken;
  let refreshes = 0;
  let logins = 0;
  let codeUsed = false;
  const attempts: RefreshAttempt[] = [];
  const mint = (prefix: string | undefined) => `${prefix ?? ''}${randomBytes(24).toString('base64url')}`;

  const handler: StandinHandler = async (req, res) => {
    if (req.host !== options.host || req.path !== options.path) return false;
    const oauthError = (status: number, error: string, description: string) => sendJson(res, status, { error, error_description: description });
    if (req.method !== 'POST') return oauthError(405, 'invalid_request', 'POST only');
    const fields = fieldsOf(req, options.body);
    if (!fields) return oauthError(400, 'invalid_request', `the body must be ${options.body === 'json' ? 'JSON' : 'a form'}`);
    if (options.clientId !== undefined && fields['client_id'] !== options.clientId) return oauthError(401, 'invalid_client', 'unknown client_id');
    if (fields['grant_type'] === 'authorization_code' && options.authorizationCode !== undefined) {
      // A code is good once, as a server's is: a replayed one is invalid_grant.
      if (codeUsed || fields['code'] !== options.authorizationCode) return oauthError(400, 'invalid_grant', 'authorization code not valid');
      codeUsed = true;
      logins += 1;
      const accessToken = options.mintAccess?.(ttl) ?? mint(options.accessPrefix);
      access.set(accessToken, Date.now() + ttl * 1000);
      accessOrder.push(accessToken);
      const issued = { access_token: accessToken, refresh_token: current };
      return sendJson(res, 200, {
        token_type: 'Bearer',
        ...issued,
        expires_in: ttl,
        ...(typeof fields['scope'] === 'string' ? { scope: fields['scope'] } : {}),
        ...options.extra?.(issued),
      });
    }
    if (fields['grant_type'] !== 'refresh_token')
      return oauthError(400, 'unsupported_grant_type', `grant_type ${String(fields['grant_type'])} is not taken here`);
    if (options.clientSecret !== undefined && fields['client_secret'] !== options.clientSecret) return oauthError(401, 'invalid_client', 'bad client_secret');
    const presented = typeof fields['refresh_token'] === 'string' ? fields['refresh_token'] : '';
    if (presented !== current) {
      const reason = presented === '' ? 'no refresh_token' : 'refresh token not valid (rotated away, revoked, or never issued)';
      attempts.push({ refreshToken: presented, ok: false, reason });
      return oauthError(400, 'invalid_grant', reason);
    }
    attempts.push({ refreshToken: presented, ok: true });
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    refreshes += 1;
    const accessToken = options.mintAccess?.(ttl) ?? mint(options.accessPrefix);
    access.set(accessToken, Date.now() + ttl * 1000);
    accessOrder.push(accessToken);
    if (rotate) current = mint(options.refreshPrefix);
    const issued = { access_token: accessToken, refresh_token: current };
    return sendJson(res, 200, {
      token_type: 'Bearer',
      access_token: accessToken,
      expires_in: ttl,
      ...(rotate ? { refresh_token: current } : {}),
      // Granted as asked: Claude Code reads the scopes it was given from here.
      ...(typeof fields['scope'] === 'string' ? { scope: fields['scope'] } : {}),
      ...options.extra?.(issued),
    });
  };

  return {
    handler,
    attempts,
    get refreshes() {
      return refreshes;
    },
    get logins() {
      return logins;
    },
    get refreshToken() {
      return current;
    },
    get accessTokens() {
      return accessOrder;
    },
    isValidAccess: (token) => (access.get(token) ?? 0) > Date.now(),
  };
}
