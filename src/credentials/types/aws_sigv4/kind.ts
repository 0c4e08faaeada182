import { awsSigV4Injector, refuseInjectSettings } from '../../injectors/index.ts';
import type { AwsMaterial } from './material.ts';
import { awsSigningOf } from './signing/config.ts';
import { awsSigner } from './signing/signer.ts';
import { blank, type GrantKind, objectUsable } from '../kind.ts';
import { awsIssuer } from './issuer.ts';

// aws_sigv4: an AWS access key; keyway signs each request with it (or with the role it assumes:
// issuer.ts) and never sends the secret key.

export const awsSigV4: GrantKind<'aws_sigv4'> = {
  type: 'aws_sigv4',
  shape: 'an aws_sigv4 secret is a JSON object {"accessKeyId","secretAccessKey","sessionToken"?}',
  object: ({ str }) => ({ accessKeyId: str('accessKeyId', true)!, secretAccessKey: str('secretAccessKey', true)!, sessionToken: str('sessionToken', false) }),
  usable: objectUsable<AwsMaterial>(
    (m) =>
      typeof m.accessKeyId === 'string' &&
      typeof m.secretAccessKey === 'string' &&
      !blank(m.accessKeyId) &&
      !blank(m.secretAccessKey) &&
      !blank(m.sessionToken),
  ),
  issuer: awsIssuer,
  wire: {
    by: 'sign',
    injector: (inject) => {
      refuseInjectSettings(inject, 'an aws_sigv4 grant signs each request; it takes no --header, --format, --query or --body', true);
      return awsSigV4Injector();
    },
    signer: (g) => awsSigner(awsSigningOf(g)),
  },
  // The fixed scope, where the grant has one (else each request's host names it).
  describe: (g, injector) => {
    const scope = [g.region, g.service].filter((s) => s !== undefined).join('/');
    return `${injector.describe()}${scope === '' ? '' : ` (${scope})`}`;
  },
  compile: (g) => ({ settings: awsSigningOf(g) }),
  parsesConfigSecret: true,
};
