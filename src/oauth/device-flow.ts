import { requestUrl, type Dispatcher } from '../net/undici.ts';
import { KeywayError } from '../errors/index.ts';
import { requestToken, TokenEndpointError, type TokenEndpoint, type TokenSet } from '../credentials/issuing/token-endpoint.ts';
import { safeOrigin } from '../credentials/issuing/token-post.ts';

export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | undefined;
  expiresAt: number;
  intervalMs: number;
}

/** RFC 8628 3.1-3.2: ask for a device code and the user code to show. */
export async function startDeviceAuthorization(
  url: string,
  endpoint: TokenEndpoint,
  scopes: readonly string[],
  dispatcher?: Dispatcher,
): Promise<DeviceAuthorization> {
  const body = new URLSearchParams();
  if (endpoint.clientId !== undefined) body.set('client_id', endpoint.clientId);
  if (scopes.length > 0) body.set('scope', scopes.join(' '));
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (endpoint.clientAuth === 'basic' && endpoint.clientId !== undefined && endpoint.clientSecret !== undefined) {
    headers['authorization'] =
      `Basic ${Buffer.from(`${encodeURIComponent(endpoint.clientId)}:${encodeURIComponent(endpoint.clientSecret)}`).toString('base64')}`;
  } else if (endpoint.clientSecret !== undefined) {
    body.set('client_secret', endpoint.clientSecret);
  }
  const response = await requestUrl(url, { method: 'POST', headers, body: body.toString(), dispatcher, signal: AbortSignal.timeout(15_000) }).catch(
    (err: unknown) => {
      throw new KeywayError('usage', `the device authorization endpoint ${safeOrigin(url)} could not be reached`, { cause: err });
    },
  );
  const json = (await response.body.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (response.statusCode !== 200 || typeof json?.['device_code'] !== 'string' || typeof json['user_code'] !== 'string') {
    const error = typeof json?.['error'] === 'string' ? ` (${String(json['error']).replace(/[^\w.-]/g, '')})` : '';
    throw new KeywayError('usage', `the device authorization endpoint answered HTTP ${response.statusCode}${error}`);
  }
  const verificationUri = String(json['verification_uri'] ?? json['verification_url'] ?? '');
  const expiresIn = Number(json['expires_in'] ?? 600);
  const interval = Number(json['interval'] ?? 5);
  return {
    deviceCode: json['device_code'],
    userCode: json['user_code'],
    verificationUri,
    verificationUriComplete: typeof json['verification_uri_complete'] === 'string' ? json['verification_uri_complete'] : undefined,
    expiresAt: Date.now() + expiresIn * 1000,
    intervalMs: Math.max(1, interval) * 1000,
  };
}

/**
 * RFC 8628 3.4-3.5: poll the token endpoint at the given interval until the user approves.
 * `authorization_pending` waits, `slow_down` adds 5 s to the interval, `expired_token` and
 * `access_denied` end the flow.
 */
export async function pollDeviceToken(
  endpoint: TokenEndpoint,
  device: DeviceAuthorization,
  options: { dispatcher?: Dispatcher | undefined; timeoutMs: number; sleep?: (ms: number) => Promise<void> },
): Promise<TokenSet> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let interval = device.intervalMs;
  for (;;) {
    if (Date.now() >= device.expiresAt) throw new KeywayError('usage', 'the device code expired before it was approved; run connect again');
    await sleep(interval);
    try {
      return await requestToken(
        endpoint,
        { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.deviceCode },
        { timeoutMs: options.timeoutMs, dispatcher: options.dispatcher },
      );
    } catch (err) {
      if (!(err instanceof TokenEndpointError)) throw err;
      if (err.oauthError === 'authorization_pending') continue;
      if (err.oauthError === 'slow_down') {
        interval += 5_000;
        continue;
      }
      if (err.oauthError === 'expired_token') throw new KeywayError('usage', 'the device code expired before it was approved; run connect again');
      if (err.oauthError === 'access_denied') throw new KeywayError('usage', 'the authorization was denied');
      throw new KeywayError('usage', err.message, { cause: err });
    }
  }
}
