import { type HmacMaterial, keyEncodingProblem } from './material.ts';
import { placementText, type HmacScheme } from './scheme.ts';

/**
 * Why this material cannot sign with this scheme, or undefined when it can: for `keyway secrets
 * set` and `grants add`, so a missing keyId or a key in the wrong encoding is said when the secret
 * is stored, not on the first request. Never quotes the material.
 */
export function hmacMaterialProblem(scheme: HmacScheme, material: HmacMaterial): string | undefined {
  const encoding = keyEncodingProblem(material.key, scheme.keyEncoding);
  if (encoding) return encoding;
  if (scheme.keyId && !material.keyId) return `${scheme.describe()} sends the key id in ${placementText(scheme.keyId)}: add "keyId"`;
  if (scheme.passphrase && !material.passphrase) return `${scheme.describe()} sends the passphrase in ${placementText(scheme.passphrase)}: add "passphrase"`;
  return undefined;
}
