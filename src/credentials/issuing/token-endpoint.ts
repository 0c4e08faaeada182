import type { Dispatcher } from '../../net/undici.ts';
import { basicClientAuth, postToken, printableErrorCode, safeOrigin } from './token-post.ts';

// One call to an OAuth2 token endpoint (RFC 6749 section 4/6, RFC 8628 section 3.4), with the
// quirks a provider may need: what is sent and what the answer means (the call itself is
// token-post.ts's, as every issuer's).

export interface TokenEndpoint {
  tokenUrl: string;
  /** refresh_token requests go here instead, for the few providers that split them (Figma). */
  refreshUrl?: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** 'basic': HTTP Basic with form-encoded id and secret (RFC 6749 2.3.1); 'body': in the parameters. */
  clientAuth: 'basic' | 'body';
  bodyFormat: 'form' | 'json';
  extraParams: Readonly<Record<string, string>>;
}

export interface TokenSet {
  accessToken: string;
  refreshToken: string | undefined;
  /** Epoch ms; undefined when the endpoint gave no expires_in. */
  expiresAt: number | undefined;
  scopes: string[] | undefined;
  /** Who the tokens belong to, from an OpenID Connect id_token (accountOf); undefined without one. */
  account?: string | undefined;
}

export type TokenFailureKind = 'invalid_grant' | 'rejected' | 'pending' | 'unreachable' | 'timeout' | 'bad_response' | 'server_error';

/** A failed token request. Messages name the failure only, never a token or a response body. */
export class TokenEndpointError extends Error {
  readonly kind: TokenFailureKind;
  /** The OAuth `error` code the endpoint returned, if any (e.g. invalid_grant, slow_down). */
  readonly oauthError: string | undefined;
  readonly status: number | undefined;

  constructor(kind: TokenFailureKind, message: string, details: { oauthError?: string | undefined; status?: number | undefined; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TokenEndpointError';
    this.kind = kind;
    this.oauthError = details.oauthError;
    this.status = details.status;
  }
}

// Device-flow answers that mean "ask again", not failure (RFC 8628 3.5).
const PENDING = new Set(['authorization_pending', 'slow_down']);

export interface TokenRequestOptions {
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  now?: () => number;
}

export async function requestToken(endpoint: TokenEndpoint, params: Record<string, string>, options: TokenRequestOptions): Promise<TokenSet> {
  const body: Record<string, string> = { ...endpoint.extraParams, ...params };
  const headers: Record<string, string> = { accept: 'application/json' };
  if (endpoint.clientId !== undefined) {
    if (endpoint.clientAuth === 'basic' && endpoint.clientSecret !== undefined) {
      headers['authorization'] = basicClientAuth(endpoint.clientId, endpoint.clientSecret);
    } else {
      body['client_id'] = endpoint.clientId;
      if (endpoint.clientSecret !== undefined) body['client_secret'] = endpoint.clientSecret;
    }
  }
  const url = params['grant_type'] === 'refresh_token' && endpoint.refreshUrl ? endpoint.refreshUrl : endpoint.tokenUrl;
  const where = safeOrigin(url);
  const { status, text } = await postToken(
    { url, headers, body: endpoint.bodyFormat === 'json' ? { json: body } : { form: new URLSearchParams(body) } },
    options,
    (failure) => new TokenEndpointError(failure.kind === 'oversize' ? 'bad_response' : failure.kind, `the token endpoint ${failure.message}`),
  );

  const parsed = userTokenOf(parseBody(text));
  if (status >= 200 && status < 300) {
    const accessToken = parsed?.['access_token'];
    if (typeof accessToken !== 'string' || accessToken.trim().length === 0) {
      throw new TokenEndpointError('bad_response', `the token endpoint ${where} answered ${status} without an access_token`, { status });
    }
    const refreshToken = parsed?.['refresh_token'];
    const expiresIn = Number(parsed?.['expires_in']);
    const scope = parsed?.['scope'];
    const now = (options.now ?? Date.now)();
    return {
      accessToken,
      // A blank refresh token is no refresh token: the stored one is kept.
      refreshToken: typeof refreshToken === 'string' && refreshToken.trim().length > 0 ? refreshToken : undefined,
      expiresAt: Number.isFinite(expiresIn) && expiresIn > 0 ? now + expiresIn * 1000 : undefined,
      scopes: typeof scope === 'string' ? scope.split(/[\s,]+/).filter(Boolean) : undefined,
      account: accountOf(parsed?.['id_token']),
    };
  }
  const oauthError = typeof parsed?.['error'] === 'string' ? (parsed['error'] as string) : undefined;
  // Only the error code is kept: error_description is free text from the provider.
  const detail = oauthError ? ` (${printableErrorCode(oauthError)})` : '';
  if (oauthError === 'invalid_grant') {
    throw new TokenEndpointError('invalid_grant', `the token endpoint ${where} refused the grant (invalid_grant)`, { oauthError, status });
  }
  if (oauthError !== undefined && PENDING.has(oauthError)) {
    throw new TokenEndpointError('pending', `authorization pending${detail}`, { oauthError, status });
  }
  if (status >= 500) {
    throw new TokenEndpointError('server_error', `the token endpoint ${where} failed with HTTP ${status}${detail}`, { oauthError, status });
  }
  if (oauthError !== undefined) {
    throw new TokenEndpointError('rejected', `the token endpoint ${where} refused the request${detail}`, { oauthError, status });
  }
  throw new TokenEndpointError('bad_response', `the token endpoint ${where} answered HTTP ${status} with no OAuth error`, { status });
}

/**
 * Slack's v2 flow answers with the bot token at the top and the user's token under `authed_user`;
 * keyway acts for the user, so the user's token is the one kept when there is no top-level one.
 */
function userTokenOf(body: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const user = body?.['authed_user'];
  if (
    body &&
    typeof body['access_token'] !== 'string' &&
    user &&
    typeof user === 'object' &&
    typeof (user as Record<string, unknown>)['access_token'] === 'string'
  ) {
    return { ...body, ...(user as Record<string, unknown>) };
  }
  return body;
}

function parseBody(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    // Some endpoints (GitHub without Accept) answer form-encoded.
    if (/^[\w.-]+=/.test(text)) return Object.fromEntries(new URLSearchParams(text));
    return undefined;
  }
}

/**
 * The account an OpenID Connect id_token names (email, else preferred_username, else sub), for the
 * wallet to show. Only its payload is read, not its signature: it came from the token endpoint over
 * verified TLS, in the same answer as the tokens, and it is only ever displayed. The id_token itself
 * is not kept. Printable text up to 200 characters, or undefined.
 */
export function accountOf(idToken: unknown): string | undefined {
  if (typeof idToken !== 'string') return undefined;
  const payload = idToken.split('.')[1];
  if (payload === undefined) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const c = claims as Record<string, unknown>;
  const name = [c['email'], c['preferred_username'], c['sub']].find((v): v is string => typeof v === 'string' && v.trim().length > 0);
  return name !== undefined && /^[\x20-\x7e\u00a0-\uffff]{1,200}$/.test(name) ? name : undefined;
}
