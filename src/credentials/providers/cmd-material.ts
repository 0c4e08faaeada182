import { describeSourced } from '../../config/sourced-secret.ts';
import { ProxyError } from '../../errors/index.ts';
import type { Grant } from '../grant.ts';
import type { SecretMaterial } from '../material.ts';
import { parseMaterial } from '../types/index.ts';

/**
 * A secret command's trimmed output as the grant's material, read as `keyway secrets set` reads
 * what it is given (a token is one line; basic, aws_sigv4 and hmac take JSON). Output that does not
 * fit is 502 secret_unavailable, in words that never quote it.
 */
export function commandMaterial(grant: Pick<Grant, 'id' | 'type' | 'secretCommand' | 'secretFrom'>, text: string): SecretMaterial {
  try {
    return parseMaterial(grant.type, text);
  } catch (err) {
    const from = grant.secretFrom;
    const what =
      from !== undefined ? `its secret source ${describeSourced(from)} holds` : `its secret command (${grant.secretCommand?.argv[0] ?? 'the command'}) printed`;
    const fix =
      from !== undefined
        ? `keep the secret at the source as \`keyway secrets set\` takes it (or name its field with key:)`
        : `make the command of grants.${grant.id}.secret print the secret as \`keyway secrets set\` takes it`;
    throw new ProxyError('secret_unavailable', `grant "${grant.id}": ${what} something that is not a ${grant.type} secret: ${(err as Error).message}`, {
      grant: grant.id,
      hint: fix,
    });
  }
}
