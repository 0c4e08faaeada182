import type { KindExample } from '../example.ts';

const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export const jwtExample: KindExample<'jwt'> = {
  // Unsigned is enough: keyway reads its exp, the upstream checks its signature.
  secret: () => `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'example', exp: 4_102_444_800 })}.`,
  blank: ' ',
  fields: {},
  describes: 'header Authorization: Bearer {secret}',
};
