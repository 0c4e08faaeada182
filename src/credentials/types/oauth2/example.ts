import type { KindExample } from '../example.ts';

export const oauth2Example: KindExample<'oauth2'> = {
  secret: () => JSON.stringify({ refreshToken: 'example-refresh-token', clientId: 'example-client' }),
  blank: JSON.stringify({ refreshToken: ' ' }),
  fields: {},
  describes: 'header Authorization: Bearer {secret}',
};
