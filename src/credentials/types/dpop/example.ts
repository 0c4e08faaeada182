import type { KindExample } from '../example.ts';
import { newBoundKey } from './key.ts';

export const dpopExample: KindExample<'dpop'> = {
  secret: () => JSON.stringify({ clientId: 'example-client', clientSecret: 'example-client-secret' }),
  blank: JSON.stringify({ clientId: 'example-client', clientSecret: ' ' }),
  boundKey: () => newBoundKey('ES256'),
  fields: { token_endpoint: 'https://auth.example.com/token' },
  describes: 'header Authorization: DPoP {token}, DPoP: {proof} (ES256; tokens from https://auth.example.com/token)',
};
