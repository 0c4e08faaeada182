import type { KindExample } from '../example.ts';

export const hmacExample: KindExample<'hmac'> = {
  secret: () => JSON.stringify({ key: Buffer.from('an example key of some length').toString('base64'), keyId: 'example-key-id' }),
  blank: JSON.stringify({ key: ' ' }),
  fields: { sign: { preset: 'kraken' } },
  describes: 'hmac preset kraken',
};
