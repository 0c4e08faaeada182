import type { GrantType } from '../../config/index.ts';
import { KINDS, usableMaterial } from '../types/index.ts';
import type { Credential, SecretMaterial } from '../material.ts';

/**
 * The credential of a static grant (api_key, bearer, basic, jwt, aws_sigv4, hmac; mtls: the
 * connection's), straight from its material in memory. OAuth and minted grants get theirs issued.
 * Returns undefined when the grant has no usable secret (none yet, or an empty one).
 */
export function staticCredential(type: GrantType, material: SecretMaterial | undefined): Credential | undefined {
  const issuer = KINDS[type].issuer;
  if (issuer.by !== 'material' || material === undefined || !usableMaterial(type, material)) return undefined;
  return issuer.credential(material);
}
