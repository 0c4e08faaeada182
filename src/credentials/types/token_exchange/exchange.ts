// RFC 8693 (OAuth 2.0 Token Exchange): keyway trades a subject token (the agent's identity token,
// or a configured one) at a token endpoint for a token to a given audience, acting for that
// subject. The request, reading the answer, and whose behalf a token acts on.

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The token type URIs of RFC 8693 section 3. */
export const TOKEN_TYPES = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
} as const;

export interface ExchangeRequest {
  readonly subjectToken: string;
  readonly subjectTokenType: string;
  readonly audience?: readonly string[] | undefined;
  readonly resource?: readonly string[] | undefined;
  readonly scope?: readonly string[] | undefined;
  readonly requestedTokenType?: string | undefined;
  readonly actorToken?: string | undefined;
  readonly actorTokenType?: string | undefined;
  /**
   * A delegated agent's chain, root first, the agent last: told to the endpoint as a signed actor
   * token made at each exchange (actor-token.ts), and part of the cache key, so a child never gets
   * its parent's token nor a parent its child's.
   */
  readonly actorChain?: readonly string[] | undefined;
}

/** The form a token exchange posts (client authentication goes on as the endpoint's other calls do). */
export function exchangeForm(request: ExchangeRequest): URLSearchParams {
  const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: request.subjectToken, subject_token_type: request.subjectTokenType });
  for (const audience of request.audience ?? []) form.append('audience', audience);
  for (const resource of request.resource ?? []) form.append('resource', resource);
  if (request.scope?.length) form.set('scope', request.scope.join(' '));
  if (request.requestedTokenType !== undefined) form.set('requested_token_type', request.requestedTokenType);
  if (request.actorToken !== undefined) {
    form.set('actor_token', request.actorToken);
    form.set('actor_token_type', request.actorTokenType ?? TOKEN_TYPES.access_token);
  }
  return form;
}

/** How long a token whose answer named no lifetime is held before it is exchanged again. */
export const NO_EXPIRY_MS = 5 * 60_000;

export interface Exchanged {
  readonly accessToken: string;
  readonly issuedTokenType: string;
  readonly tokenType: string;
  /** Epoch ms (NO_EXPIRY_MS from now when the answer gave no expires_in). */
  readonly expiresAt: number;
  readonly scope: string | undefined;
}

/** Why an exchange failed: the endpoint's error code and description (no token is ever quoted). */
export class ExchangeRefused extends Error {
  readonly error: string;
  readonly status: number;
  constructor(status: number, error: string, description: string | undefined) {
    super(`the token endpoint refused the exchange (${status} ${error}${description ? `: ${description.slice(0, 200)}` : ''})`);
    this.error = error;
    this.status = status;
  }
}

/** Reads a token endpoint's answer to an exchange (RFC 8693 2.2). */
export function readExchanged(status: number, body: string, now = Date.now()): Exchanged {
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new ExchangeRefused(status, 'unreadable', 'the answer is not JSON');
  }
  if (status < 200 || status >= 300 || typeof answer !== 'object' || answer === null) {
    throw new ExchangeRefused(
      status,
      typeof answer?.['error'] === 'string' ? answer['error'] : 'error',
      typeof answer?.['error_description'] === 'string' ? answer['error_description'] : undefined,
    );
  }
  const token = answer['access_token'];
  if (typeof token !== 'string' || token === '') throw new ExchangeRefused(status, 'no_token', 'the answer carries no access_token');
  // keyway sends what it gets as a bearer token: one of another kind (N_A: not an access token; DPoP:
  // bound to a key keyway does not hold) would be refused upstream, or sent where it means something else.
  const tokenType = answer['token_type'];
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer')
    throw new ExchangeRefused(status, 'not_bearer', 'the issued token is not a bearer token');
  const issuedType = typeof answer['issued_token_type'] === 'string' ? answer['issued_token_type'] : TOKEN_TYPES.access_token;
  if (issuedType !== TOKEN_TYPES.access_token && issuedType !== TOKEN_TYPES.jwt)
    throw new ExchangeRefused(status, 'not_access_token', 'the issued token is not an access token');
  const expiresIn = answer['expires_in'];
  return {
    accessToken: token,
    issuedTokenType: issuedType,
    tokenType,
    // No expires_in: held for NO_EXPIRY_MS at most, then exchanged again.
    expiresAt: now + (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn >= 0 ? expiresIn * 1000 : NO_EXPIRY_MS),
    scope: typeof answer['scope'] === 'string' ? answer['scope'] : undefined,
  };
}

/** Whose behalf a token acts on: a JWT subject token's `sub` (read, not checked: whoever gave it keyway checked it). */
export function subjectOf(subjectToken: string): string | undefined {
  const parts = subjectToken.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const sub = (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' && sub.length <= 256 ? sub : undefined;
  } catch {
    return undefined;
  }
}
