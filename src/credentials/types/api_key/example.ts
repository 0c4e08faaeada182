import type { KindExample } from '../example.ts';

export const apiKeyExample: KindExample<'api_key'> = {
  secret: () => 'example-api-key',
  blank: '',
  fields: {},
  inject: { header: 'X-Api-Key', format: '{secret}' },
  describes: 'header X-Api-Key: {secret}',
};
