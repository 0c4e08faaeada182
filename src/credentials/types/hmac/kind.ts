import { parseByteSize } from '../../../config/byte-size.ts';
import { hmacInjector, refuseInjectSettings } from '../../injectors/index.ts';
import type { HmacKeyMaterial } from './material.ts';
import { DEFAULT_MAX_SIGNED_BODY, type RequestSigner } from '../../signing/signer.ts';
// Not signing/index.ts: its sign: schema (zod) is the config loader's, not the proxy's start.
import { compileHmacScheme } from './signing/compile.ts';
import { hmacSigner } from './signer.ts';
import { blank, type GrantKind, noSettings, type OwnFields, objectUsable } from '../kind.ts';

// hmac: a key keyway signs requests with, by the grant's scheme (a preset or its own template); the
// key never goes upstream, the key id and passphrase go where the scheme says.

/** Its signer: the compiled scheme and the largest body held to hash; none without a scheme. */
function hmacSigningOf(g: OwnFields<'hmac'>): RequestSigner | undefined {
  if (g.sign === undefined) return undefined;
  const max = g.max_signed_body === undefined ? undefined : parseByteSize(g.max_signed_body);
  return hmacSigner(compileHmacScheme(g.sign), max ?? DEFAULT_MAX_SIGNED_BODY);
}

export const hmac: GrantKind<'hmac'> = {
  type: 'hmac',
  shape: 'an hmac secret is a JSON object {"key", "keyId"?, "passphrase"?}',
  object: ({ str }) => ({ key: str('key', true)!, keyId: str('keyId', false), passphrase: str('passphrase', false) }),
  usable: objectUsable<HmacKeyMaterial>((m) => typeof m.key === 'string' && !blank(m.key) && !blank(m.keyId) && !blank(m.passphrase)),
  issuer: {
    by: 'material',
    credential: (m) => (typeof m === 'object' && 'key' in m ? { kind: 'hmac', key: m.key, keyId: m.keyId, passphrase: m.passphrase } : undefined),
    refetchReplays: false,
  },
  wire: {
    by: 'sign',
    injector: (inject) => {
      refuseInjectSettings(inject, 'an hmac grant signs each request; it takes no --header, --format, --query or --body', true);
      return hmacInjector();
    },
    signer: hmacSigningOf,
  },
  // The scheme says more than the injector: which preset, or which algorithm.
  describe: (g, injector) => (g.sign === undefined ? injector.describe() : compileHmacScheme(g.sign).describe()),
  compile: noSettings,
  parsesConfigSecret: true,
};
