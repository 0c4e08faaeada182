import type { KindExample } from '../example.ts';

export const basicExample: KindExample<'basic'> = {
  secret: () => 'example-user:example-password',
  blank: '{"username":"example-user","password":" "}',
  fields: {},
  describes: 'header Authorization: Basic {username:password}',
};
