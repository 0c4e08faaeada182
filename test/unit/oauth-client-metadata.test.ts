import { describe, expect, it } from 'vitest';
import { clientMetadataUrlOk } from '../../src/config/schema/config.ts';
import { chooseClient, clientMetadataDocument } from '../../src/oauth/client-metadata.ts';

const URL_ = 'https://example.com/keyway/client.json';
const REDIRECT = 'http://127.0.0.1:5555/callback';

describe('the client keyway connect --mcp signs in as', () => {
  it('takes a given client id first, then the metadata document where the server takes one, then registration', () => {
    const server = { issuer: 'https://as.example.com', clientMetadataDocuments: true, registrationUrl: 'https://as.example.com/reg' };
    expect(chooseClient(server, { clientId: 'mine', metadataUrl: URL_ }, REDIRECT)).toEqual({ kind: 'given', clientId: 'mine' });
    expect(chooseClient(server, { clientId: undefined, metadataUrl: URL_ }, REDIRECT)).toEqual({ kind: 'document', clientId: URL_ });
    expect(chooseClient(server, { clientId: undefined, metadataUrl: undefined }, REDIRECT)).toEqual({
      kind: 'register',
      registrationUrl: server.registrationUrl,
    });
    expect(chooseClient({ ...server, clientMetadataDocuments: false }, { clientId: undefined, metadataUrl: URL_ }, REDIRECT).kind).toBe('register');
  });

  it('says what to do when there is no way: host a document, or register a client by hand', () => {
    const bare = { issuer: 'https://as.example.com', clientMetadataDocuments: true, registrationUrl: undefined };
    expect(() => chooseClient(bare, { clientId: undefined, metadataUrl: undefined }, REDIRECT)).toThrow(/keyway oauth client-metadata URL.*--client-id/s);
    expect(() => chooseClient({ ...bare, clientMetadataDocuments: false }, { clientId: undefined, metadataUrl: URL_ }, REDIRECT)).toThrow(
      /takes no Client ID Metadata Documents/,
    );
  });

  it('prints a public native client whose client_id is its URL, with the loopback redirect on any port', () => {
    expect(clientMetadataDocument(URL_)).toMatchObject({
      client_id: URL_,
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
  });

  it('takes only https URLs with a path, no user, fragment or dot segments', () => {
    expect(clientMetadataUrlOk(URL_)).toBe(true);
    for (const bad of [
      'http://example.com/c.json',
      'https://example.com/',
      'https://u:p@example.com/c.json',
      'https://example.com/c.json#x',
      'https://example.com/a/../c.json',
      'not a url',
    ])
      expect(clientMetadataUrlOk(bad), bad).toBe(false);
  });
});
