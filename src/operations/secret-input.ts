// A grant's secret as a caller gives it: the text typed or piped to `keyway secrets set`, or, in a
// JSON body, a string or an object (an oauth2 or basic secret). Errors never quote the input.
import type { GrantType } from '../config/index.ts';
import { parseMaterial, type SecretMaterial } from '../credentials/material.ts';
import { usage } from './fields.ts';

export type SecretInput = string | Record<string, unknown>;

export function parseSecretInput(type: GrantType, input: SecretInput): SecretMaterial {
  // An object's JSON text would otherwise pass as a one-line token.
  if (typeof input !== 'string' && (type === 'api_key' || type === 'bearer')) throw usage(`a ${type} secret is a string`);
  const text = typeof input === 'string' ? input : JSON.stringify(input);
  try {
    return parseMaterial(type, text);
  } catch (err) {
    throw usage((err as Error).message);
  }
}
