import { requestUrl, type Dispatcher } from '../net/undici.ts';
import type { TokenEndpoint } from '../credentials/issuing/token-endpoint.ts';
import { safeOrigin } from '../credentials/issuing/token-post.ts';

/**
 * RFC 7009: ask the provider to revoke a token. Returns whether the provider accepted; a failure is
 * reported, never thrown, because the grant is marked revoked locally either way.
 */
export async function revokeToken(
  url: string,
  endpoint: TokenEndpoint,
  token: string,
  hint: 'refresh_token' | 'access_token',
  dispatcher?: Dispatcher,
): Promise<{ ok: boolean; detail: string }> {
  const body: Record<string, string> = { token, token_type_hint: hint };
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (endpoint.clientAuth === 'basic' && endpoint.clientId !== undefined && endpoint.clientSecret !== undefined) {
    headers['authorization'] =
      `Basic ${Buffer.from(`${encodeURIComponent(endpoint.clientId)}:${encodeURIComponent(endpoint.clientSecret)}`).toString('base64')}`;
  } else {
    if (endpoint.clientId !== undefined) body['client_id'] = endpoint.clientId;
    if (endpoint.clientSecret !== undefined) body['client_secret'] = endpoint.clientSecret;
  }
  try {
    const response = await requestUrl(url, {
      method: 'POST',
      headers,
      body: new URLSearchParams(body).toString(),
      dispatcher,
      signal: AbortSignal.timeout(15_000),
    });
    await response.body.dump();
    // RFC 7009 2.2: 200 for success, including a token that was already invalid.
    return response.statusCode === 200
      ? { ok: true, detail: 'revoked at the provider' }
      : { ok: false, detail: `${safeOrigin(url)} answered HTTP ${response.statusCode}` };
  } catch (err) {
    return { ok: false, detail: `${safeOrigin(url)} could not be reached (${(err as { code?: string }).code ?? 'error'})` };
  }
}
