import * as client from 'openid-client';
import type { AuthServer } from './auth-server.ts';

// An agent's own authorization-code login with openid-client (PKCE, state, nonce), the person's
// part (login and consent) played straight at the login server, as their browser would: the login
// capture tests run it through keyway and look at what the client holds.

export async function codeLogin(
  config: client.Configuration,
  auth: AuthServer,
): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers & { nonce: string }> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: 'http://127.0.0.1:53682/callback',
    scope: 'openid offline_access api',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent',
  });
  const callback = await auth.completeAuthorization(url.toString());
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  return Object.assign(tokens, { nonce });
}
