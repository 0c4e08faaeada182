import type { KindExample } from '../example.ts';

export const clientCredentialsExample: KindExample<'client_credentials'> = {
  secret: () => JSON.stringify({ clientId: 'example-client', clientSecret: 'example-client-secret' }),
  blank: JSON.stringify({ clientId: 'example-client', clientSecret: ' ' }),
  fields: {},
  describes: 'header Authorization: Bearer {secret}',
};
