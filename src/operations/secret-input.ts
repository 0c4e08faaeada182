// A grant's secret as a caller gives it: the text typed or piped to `keyway secrets set`, or, in a
// JSON body, a string or an object (an oauth2 or basic secret). Errors never quote the input.
import { looksLikeCommandRef, type GrantType } from '../config/index.ts';
import { parseMaterial, type SecretMaterial } from '../credentials/material.ts';
import { usage } from './fields.ts';

export type SecretInput = string | Record<string, unknown>;

export function parseSecretInput(type: GrantType, input: SecretInput): SecretMaterial {
  // A command is named only in the config file: whoever may write the store or call the admin API
  // must not get keyway to run a program of their choosing.
  if (looksLikeCommandRef(input)) {
    throw usage('a secret from a command ({"cmd": […]}) can only be set in the config file (grants.ID.secret); give the secret itself here');
  }
  // An object's JSON text would otherwise pass as a one-line token.
  if (typeof input !== 'string' && (type === 'api_key' || type === 'bearer')) throw usage(`a ${type} secret is a string`);
  const text = typeof input === 'string' ? input : JSON.stringify(input);
  try {
    return parseMaterial(type, text);
  } catch (err) {
    throw usage((err as Error).message);
  }
}
