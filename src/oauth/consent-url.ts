export interface ConsentRequest {
  authorizeUrl: string;
  clientId: string;
  redirectUri: string;
  scopes: readonly string[];
  state: string;
  codeChallenge: string;
  /** Provider quirks, e.g. access_type=offline and prompt=consent for a refresh token. */
  extraParams?: Readonly<Record<string, string>>;
  /** ' ' per RFC 6749 3.3; ',' for the providers that document commas. */
  scopeSeparator?: ' ' | ',';
}

/** The authorization-code request with PKCE (RFC 6749 4.1.1, RFC 7636 4.3). */
export function buildConsentUrl(request: ConsentRequest): string {
  const url = new URL(request.authorizeUrl);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: 'S256',
    ...request.extraParams,
  };
  if (request.scopes.length > 0) params['scope'] = request.scopes.join(request.scopeSeparator ?? ' ');
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}
