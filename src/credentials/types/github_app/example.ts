import { generateKeyPairSync } from 'node:crypto';
import type { KindExample } from '../example.ts';

const rsaKey = (): string => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

export const githubAppExample: KindExample<'github_app'> = {
  secret: () => JSON.stringify({ appId: 12345, privateKey: rsaKey(), installationId: 67890 }),
  blank: JSON.stringify({ appId: 12345, privateKey: ' ' }),
  fields: { repositories: ['example'] },
  describes: 'header Authorization: Bearer {installation token} (Basic x-access-token:{token} off the API host)',
};
