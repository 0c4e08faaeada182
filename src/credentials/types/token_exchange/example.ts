import type { KindExample } from '../example.ts';

export const tokenExchangeExample: KindExample<'token_exchange'> = {
  secret: () => JSON.stringify({ clientId: 'example-client', clientSecret: 'example-client-secret' }),
  blank: JSON.stringify({ clientId: 'example-client', clientSecret: ' ' }),
  fields: { token_endpoint: 'https://sts.example.com/token', audience: 'https://api.example.com' },
  describes: "header Authorization: Bearer {secret} (exchanged for the agent's identity to https://api.example.com)",
};
