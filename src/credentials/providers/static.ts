import type { GrantType } from '../../config/index.ts';
import type { Credential, SecretMaterial } from '../material.ts';

/**
 * The credential of a static grant (api_key, bearer, basic), straight from its material in memory.
 * Returns undefined when the grant has no usable secret yet.
 */
export function staticCredential(type: GrantType, material: SecretMaterial | undefined): Credential | undefined {
  if (material === undefined) return undefined;
  if (type === 'basic') {
    if (typeof material === 'object' && 'username' in material && 'password' in material) {
      return { kind: 'basic', username: material.username, password: material.password };
    }
    return undefined;
  }
  if (typeof material === 'string') return { kind: 'token', value: material };
  // OAuth grants until issue 3 lands: use a stored access token as is.
  if ('accessToken' in material && typeof material.accessToken === 'string') {
    return { kind: 'token', value: material.accessToken };
  }
  return undefined;
}
