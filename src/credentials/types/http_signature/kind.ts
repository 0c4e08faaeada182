import { createPrivateKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { parseDuration } from '../../../config/duration.ts';
import { KeywayError } from '../../../errors/index.ts';
import { noInjector, refuseInjectSettings } from '../../injectors/index.ts';
import { reflowPem } from '../../material-text.ts';
import type { Credential, SecretMaterial } from '../../material.ts';
import { type GrantKind, noSettings, textUsable } from '../kind.ts';
import { parseComponent } from './components.ts';
import type { HttpSignatureConfig } from './fields.ts';
import { DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, keyDirectory } from './directory.ts';
import { httpSigner, type HttpSigning, thumbprintOf } from './signer.ts';

// http_signature: the grant's secret is a private key (PEM: Ed25519, or ECDSA on P-256) that
// keyway signs each request with (RFC 9421); the key never goes upstream, only its signatures.

const SHAPE = 'an http_signature secret is a PEM private key (Ed25519, or ECDSA on P-256)';

/** The key a PEM is, checked to be one keyway signs messages with. */
function keyOf(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new KeywayError('usage', SHAPE);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ed25519' && !(key.asymmetricKeyType === 'ec' && curve === 'prime256v1')) throw new KeywayError('usage', SHAPE);
  return key;
}

// Parsed once per key, not per request: a PEM parse costs more than the signature.
const keys = new LRUCache<string, KeyObject>({ max: 64 });

function credentialOf(material: SecretMaterial): Credential | undefined {
  if (typeof material !== 'string') return undefined;
  let key = keys.get(material);
  if (key === undefined) {
    try {
      key = keyOf(material);
    } catch {
      return undefined;
    }
    keys.set(material, key);
  }
  return { kind: 'key', key, token: undefined };
}

function signingOf(sign: NonNullable<HttpSignatureConfig>): HttpSigning {
  return {
    alg: sign.alg,
    components: sign.components.map(parseComponent),
    keyid: sign.key,
    tag: sign.tag,
    signatureAgent: sign.signature_agent === undefined ? undefined : `"${sign.signature_agent}"`,
    expiresInSeconds: Math.max(1, Math.round((parseDuration(sign.expires_in) ?? 60_000) / 1000)),
    nonce: sign.nonce,
  };
}

export const httpSignature: GrantKind<'http_signature'> = {
  type: 'http_signature',
  shape: SHAPE,
  line: (text) => {
    const pem = reflowPem(text.trim());
    keyOf(pem);
    return pem;
  },
  usable: textUsable,
  issuer: { by: 'material', credential: credentialOf, refetchReplays: false },
  wire: {
    by: 'sign',
    injector: (inject) => {
      refuseInjectSettings(inject, 'an http_signature grant signs each request; it takes no --header, --format, --query or --body', true);
      return noInjector();
    },
    signer: ({ sign }) => (sign === undefined ? undefined : httpSigner(signingOf(sign))),
  },
  describe: ({ sign }) => {
    return sign === undefined ? 'RFC 9421 signature' : `RFC 9421 signature (${sign.alg}: ${sign.components.join(' ')}${sign.tag ? `; tag ${sign.tag}` : ''})`;
  },
  compile: noSettings,
  // Web Bot Auth's key directory: every http_signature grant's public key whose secret keyway
  // holds (one a command prints or a source holds is read on use, and not listed).
  publishes: {
    name: DIRECTORY_PATH.slice('/.well-known/'.length),
    mediaType: DIRECTORY_MEDIA_TYPE,
    document: (grants) => {
      const held = grants.map((grant) => (grant.material === undefined ? undefined : credentialOf(grant.material)));
      const keys = held.flatMap((credential) => (credential?.kind === 'key' ? [credential.key] : []));
      return keyDirectory([...new Map(keys.map((key) => [thumbprintOf(key), key])).values()]);
    },
  },
  parsesConfigSecret: true,
};
