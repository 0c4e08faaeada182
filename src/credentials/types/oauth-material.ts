import { KeywayError } from '../../errors/index.ts';
import type { SecretMaterial } from '../material.ts';
import { blank, type ObjectInput } from './kind.ts';

// oauth2 and client_credentials: tokens from a provider's token endpoint, refreshed by keyway
// (issuing/oauth-tokens.ts). The material is what the user gave: a refresh or access token and
// maybe the client, or a client id and secret.

/** Any field present must be non-blank (an empty clientId or refreshToken would be sent as is). */
export const usable = (material: SecretMaterial): boolean => typeof material === 'object' && !Object.values(material).some(blank);

export function scopesOf(type: string, { obj }: ObjectInput): string[] | undefined {
  const scopes = obj['scopes'] ?? (typeof obj['scope'] === 'string' ? String(obj['scope']).split(' ') : undefined);
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === 'string'))) {
    throw new KeywayError('usage', `${type} secret: "scopes" must be a list of strings`);
  }
  return scopes as string[] | undefined;
}

/** expiresAt, as epoch milliseconds or an ISO date (NaN when the date does not parse); undefined when absent. */
export function expiresAtOf(type: string, { obj }: ObjectInput): number | undefined {
  const expiresAt = obj['expiresAt'];
  if (expiresAt !== undefined && typeof expiresAt !== 'number' && typeof expiresAt !== 'string') {
    throw new KeywayError('usage', `${type} secret: "expiresAt" must be epoch milliseconds or an ISO date`);
  }
  return expiresAt === undefined ? undefined : typeof expiresAt === 'number' ? expiresAt : Date.parse(expiresAt);
}
