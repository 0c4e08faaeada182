import type { GrantType } from '../../config/index.ts';
import { usableMaterial, type Credential, type SecretMaterial } from '../material.ts';

/**
 * The credential of a static grant (api_key, bearer, basic), straight from its material in memory.
 * OAuth grants get theirs from the TokenManager.
 * Returns undefined when the grant has no usable secret (none yet, or an empty one).
 */
export function staticCredential(type: GrantType, material: SecretMaterial | undefined): Credential | undefined {
  if (!usableMaterial(type, material)) return undefined;
  if (type === 'mtls') return { kind: 'none' };
  if (type === 'hmac') {
    if (typeof material === 'object' && 'key' in material) return { kind: 'hmac', key: material.key, keyId: material.keyId, passphrase: material.passphrase };
    return undefined;
  }
  if (type === 'aws_sigv4') {
    if (typeof material === 'object' && 'secretAccessKey' in material) {
      return { kind: 'aws', accessKeyId: material.accessKeyId, secretAccessKey: material.secretAccessKey, sessionToken: material.sessionToken };
    }
    return undefined;
  }
  if (type === 'basic') {
    if (typeof material === 'object' && 'username' in material && 'password' in material) {
      return { kind: 'basic', username: material.username, password: material.password };
    }
    return undefined;
  }
  return typeof material === 'string' ? { kind: 'token', value: material } : undefined;
}
