import { ProxyError } from '../../errors/index.ts';
import type { Grant } from '../grants.ts';
import { parseMaterial, type SecretMaterial } from '../material.ts';

/**
 * A secret command's trimmed output as the grant's material, read as `keyway secrets set` reads
 * what it is given (a token is one line; basic, aws_sigv4 and hmac take JSON). Output that does not
 * fit is 502 secret_unavailable, in words that never quote it.
 */
export function commandMaterial(grant: Pick<Grant, 'id' | 'type' | 'secretCommand'>, text: string): SecretMaterial {
  try {
    return parseMaterial(grant.type, text);
  } catch (err) {
    const program = grant.secretCommand?.argv[0] ?? 'the command';
    throw new ProxyError(
      'secret_unavailable',
      `grant "${grant.id}": its secret command (${program}) printed something that is not a ${grant.type} secret: ${(err as Error).message}`,
      {
        grant: grant.id,
        hint: `make the command of grants.${grant.id}.secret print the secret as \`keyway secrets set\` takes it`,
      },
    );
  }
}
