import type { KindExample } from '../example.ts';

export const bearerExample: KindExample<'bearer'> = {
  secret: () => 'example-bearer-token',
  blank: '   ',
  fields: {},
  describes: 'header Authorization: Bearer {secret}',
};
