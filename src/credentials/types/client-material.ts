import { KeywayError } from '../../errors/index.ts';
import type { ClientCredentialsMaterial, SecretMaterial } from '../material.ts';
import { blank, type GrantKind, objectUsable } from './kind.ts';

// A secret that is an OAuth client keyway speaks as, {"clientId","clientSecret"}: what dpop (asking
// for bound tokens) and token_exchange (exchanging subject tokens) both hold.

/** Its kind's object form and usable check, refusals worded for `type`. */
export function clientSecretOf(type: string): Required<Pick<GrantKind, 'object'>> & Pick<GrantKind, 'usable'> {
  return {
    object: ({ str }) => {
      const material: ClientCredentialsMaterial = { clientId: str('clientId', true)!, clientSecret: str('clientSecret', true)! };
      if (blank(material.clientSecret)) throw new KeywayError('usage', `${type} secret: "clientSecret" must be a non-empty string`);
      return material;
    },
    usable: objectUsable<ClientCredentialsMaterial>((m) => typeof m.clientId === 'string' && typeof m.clientSecret === 'string' && !blank(m.clientSecret)),
  };
}

/** The client in a grant's material, or undefined when the material is not one. */
export function clientOf(material: SecretMaterial | undefined): ClientCredentialsMaterial | undefined {
  return typeof material === 'object' && 'clientId' in material && 'clientSecret' in material && typeof material.clientSecret === 'string'
    ? (material as ClientCredentialsMaterial)
    : undefined;
}
