import { KeywayError } from '../errors/index.ts';

// OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP
// authorization spec's way for a client of our own since 2026-07-28, in place of dynamic
// registration): the client_id IS the https URL of a JSON document describing the client, which the
// authorization server fetches. keyway runs on a laptop and cannot serve an https URL the world can
// reach, so the operator hosts the document (`keyway oauth client-metadata URL` prints it) and names
// its URL (oauth.client_metadata_url, or --client-metadata-url).

/** The redirect keyway's loopback listener answers on; any port, as RFC 8252 7.3 has servers allow for loopback. */
export const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

/** The document to host at `url`: a public native client (PKCE, no secret) with the loopback redirect. */
export function clientMetadataDocument(url: string): Record<string, unknown> {
  return {
    client_id: url,
    client_name: 'keyway',
    application_type: 'native',
    redirect_uris: [LOOPBACK_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/** How `keyway connect --mcp` gets a client: the one named, the metadata document, or a registration. */
export type ClientChoice = { kind: 'given'; clientId: string } | { kind: 'document'; clientId: string } | { kind: 'register'; registrationUrl: string };

/**
 * The MCP spec's order: a client id given to keyway, else a metadata document where the server takes
 * them and keyway has one, else dynamic registration where the server offers it; else a clear error.
 */
export function chooseClient(
  server: { issuer: string; clientMetadataDocuments: boolean; registrationUrl: string | undefined },
  given: { clientId: string | undefined; metadataUrl: string | undefined },
  redirectUri: string,
): ClientChoice {
  if (given.clientId !== undefined) return { kind: 'given', clientId: given.clientId };
  if (server.clientMetadataDocuments && given.metadataUrl !== undefined) return { kind: 'document', clientId: given.metadataUrl };
  if (server.registrationUrl !== undefined) return { kind: 'register', registrationUrl: server.registrationUrl };
  const documents = server.clientMetadataDocuments
    ? 'it takes Client ID Metadata Documents: host the one `keyway oauth client-metadata URL` prints and set oauth.client_metadata_url (or --client-metadata-url)'
    : 'it takes no Client ID Metadata Documents';
  throw new KeywayError(
    'usage',
    `${server.issuer} offers no client registration, and ${documents}; or register a client there (redirect ${redirectUri}) and give --client-id`,
  );
}
