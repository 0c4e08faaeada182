import { generateKeyPairSync } from 'node:crypto';
import type { KindExample } from '../example.ts';

export const privateKeyJwtExample: KindExample<'private_key_jwt'> = {
  secret: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  blank: ' ',
  fields: { token_endpoint: 'https://auth.example.com/token', client_id: 'example-client' },
  describes: 'header Authorization: Bearer {secret} (tokens from https://auth.example.com/token as example-client)',
};
