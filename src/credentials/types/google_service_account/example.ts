import { generateKeyPairSync } from 'node:crypto';
import type { KindExample } from '../example.ts';

const rsaKey = (): string => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

export const googleServiceAccountExample: KindExample<'google_service_account'> = {
  secret: () => JSON.stringify({ type: 'service_account', client_email: 'example@example.iam.gserviceaccount.com', private_key: rsaKey() }),
  blank: JSON.stringify({ client_email: 'example@example.iam.gserviceaccount.com', private_key: ' ' }),
  fields: { scopes: ['https://www.googleapis.com/auth/cloud-platform'] },
  describes: 'header Authorization: Bearer {secret}',
};
