// What keyway takes for a credential in an answer on a login host, when nobody named it. The rule
// is deliberately plain, so a person can predict it and an agent cannot slip under it: a string
// holding a run of TOKEN_RUN or more characters without whitespace looks like a credential
// (every bearer token, API key, JWT, session id and cookie value keyway has met is one such run),
// whatever its alphabet. Ordinary prose passes (its words are short); a URL, a timestamp or a
// UUID does not, and the grant lists such a member in `capture.pass` if its login answers with one.

/** The shortest run without whitespace taken for a credential (tokens shorter than this are not issued by any provider keyway knows). */
export const TOKEN_RUN = 16;

/** Whether `value` holds a run of TOKEN_RUN characters or more without whitespace. */
export function looksLikeCredential(value: string): boolean {
  if (value.length < TOKEN_RUN) return false;
  let run = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    // ASCII whitespace and the separators a sentence uses between words.
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c || c === 0x0b || c === 0xa0) run = 0;
    else if (++run >= TOKEN_RUN) return true;
  }
  return false;
}

/**
 * Members of a token answer that are not credentials, by the standards that define them (RFC 6749
 * 5.1 and 5.2, RFC 8693 2.2.1, OpenID Connect Core 3.1.3.3 and Session Management, and the
 * expiry members Microsoft, GitHub and Keycloak add). Their values are metadata: admitted at a
 * watched endpoint whatever their shape. Everything else is judged.
 */
export const METADATA_MEMBERS: ReadonlySet<string> = new Set([
  'token_type',
  'expires_in',
  'ext_expires_in',
  'expires_on',
  'expires_at',
  'not_before',
  'refresh_expires_in',
  'refresh_token_expires_in',
  'scope',
  'issued_token_type',
  'error',
  'error_description',
  'error_uri',
  'session_state',
  'not-before-policy',
  // Microsoft Entra: the account's ids as base64url JSON (uid, utid), the v1 resource URL, the
  // family-of-client-ids flag.
  'client_info',
  'resource',
  'foci',
]);

/**
 * Cookies identity providers set on their token endpoints that are no credential: load-balancer
 * affinity, anti-bot and browser-flow state (Microsoft Entra's fpc, esctx, x-ms-gateway-slice,
 * stsservicecookie, buid; AWS load balancers' AWSALB*; Cloudflare's __cf_bm, _cfuvid; Auth0's did;
 * GitHub's _octo, logged_in and _gh_sess, the browser session of a token request, which that
 * request does not sign in). The agent gets the same ones from any page of the host. Any other
 * cookie is judged.
 */
export const BENIGN_COOKIES: ReadonlySet<string> = new Set([
  'fpc',
  'esctx',
  'x-ms-gateway-slice',
  'stsservicecookie',
  'buid',
  'AWSALB',
  'AWSALBCORS',
  'AWSALBTG',
  'AWSALBTGCORS',
  '__cf_bm',
  '_cfuvid',
  'did',
  'did_compat',
  '_octo',
  'logged_in',
  '_gh_sess',
]);

/**
 * A member or header name as it is compared with "token": lower case, without `_`, `-` and `.`, so
 * access_token, accessToken, Access-Token and access.token are one name.
 */
export function normalizedName(name: string): string {
  return name.toLowerCase().replace(/[_.-]/g, '');
}

/**
 * Whether a name says its value is a token: it ends in "token" or "tokens" once normalized
 * (access_token, accessToken, X-Subject-Token, sessionToken, token, id_tokens). A name that only
 * mentions tokens (token_endpoint, id_token_signing_alg_values_supported) describes something else.
 */
export function namesToken(name: string): boolean {
  const normal = normalizedName(name);
  return normal.endsWith('token') || normal.endsWith('tokens');
}
