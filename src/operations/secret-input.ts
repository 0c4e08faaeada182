// A grant's secret as a caller gives it: the text typed or piped to `keyway secrets set`, or, in a
// JSON body, a string or an object (an oauth2 or basic secret). Errors never quote the input.
import { looksLikeCommandRef, type GrantType } from '../config/index.ts';
import { KINDS } from '../credentials/types/index.ts';
import type { SecretMaterial } from '../credentials/material.ts';
import { parseMaterial } from '../credentials/types/index.ts';
import { parseSecretJson } from '../credentials/material-text.ts';
import { usage } from './fields.ts';
import { secretTextProblem } from '../credentials/secret-text.ts';
import { pkcs12ToPem } from '../tls/pkcs12.ts';

export type SecretInput = string | Record<string, unknown>;

export function parseSecretInput(type: GrantType, input: SecretInput, format?: string | undefined): SecretMaterial {
  // A command is named only in the config file: whoever may write the store or call the admin API
  // must not get keyway to run a program of their choosing.
  if (looksLikeCommandRef(input)) {
    throw usage('a secret from a command ({"cmd": […]}) can only be set in the config file (grants.ID.secret); give the secret itself here');
  }
  // An object's JSON text would otherwise pass as a one-line token.
  if (typeof input !== 'string' && (type === 'api_key' || type === 'bearer')) throw usage(`a ${type} secret is a string`);
  if (typeof input === 'string') {
    const problem = secretTextProblem(type, format, input);
    if (problem !== undefined) throw usage(`the secret: ${problem}`);
  }
  try {
    // One parser for every way in: text (stdin, a JSON body's string, the dashboard's field) as it
    // came, an object as its JSON. An mtls PKCS#12 bundle is opened first, into the PEM form.
    const given = KINDS[type].wire.by === 'connection' ? withPemCertificate(input) : input;
    return parseMaterial(type, typeof given === 'string' ? given : JSON.stringify(given));
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/**
 * An mtls secret given as {pkcs12 (base64), passphrase?}: opened here, once, and kept as the PEM
 * chain and decrypted key (the store is sealed): the proxy then needs no PKCS#12 reader.
 */
export function withPemCertificate(input: SecretInput): SecretInput {
  let obj: unknown = input;
  if (typeof input === 'string') {
    try {
      obj = parseSecretJson(input);
    } catch {
      return input; // parseMaterial says what an mtls secret is
    }
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj) || !('pkcs12' in obj)) return input;
  const { pkcs12, passphrase, ...rest } = obj as Record<string, unknown>;
  if (typeof pkcs12 !== 'string') throw usage('mtls secret: "pkcs12" must be base64 text');
  if (passphrase !== undefined && typeof passphrase !== 'string') throw usage('mtls secret: "passphrase" must be a string');
  if (Object.keys(rest).length > 0) throw usage('mtls secret: give {pkcs12, passphrase?} or {certificate, privateKey, passphrase?}, not both');
  return { ...pkcs12ToPem(pkcs12, passphrase) };
}
