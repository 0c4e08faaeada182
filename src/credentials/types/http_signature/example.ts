import { generateKeyPairSync } from 'node:crypto';
import type { KindExample } from '../example.ts';

export const httpSignatureExample: KindExample<'http_signature'> = {
  secret: () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  blank: ' ',
  fields: { sign: { alg: 'ed25519' } },
  describes: 'RFC 9421 signature (ed25519: @method @authority @path)',
};
