import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { type InnerList, serializeDictionary, serializeInnerList, serializeItem } from 'structured-headers';
import { type Component, componentItem, componentValue, type SignedRequest } from './components.ts';

// RFC 9421 section 3.1: the signature base of a request and its signature, as the Signature-Input
// and Signature fields carry them. Ed25519 (alg ed25519) and ECDSA P-256 with SHA-256 (alg
// ecdsa-p256-sha256, r||s as the RFC writes it); the key never leaves keyway, only its signatures.

export type SignatureAlgorithm = 'ed25519' | 'ecdsa-p256-sha256';

export interface SignatureKey {
  readonly privateKey: KeyObject;
  readonly alg: SignatureAlgorithm;
  /** The keyid parameter: a JWK thumbprint for Web Bot Auth (directory.ts), or the name the server knows the key by. */
  readonly keyid: string;
}

export interface SignatureOptions {
  readonly components: readonly Component[];
  /** The signature's label in both fields (default sig1). */
  readonly label?: string;
  /** Seconds since the epoch; default now. */
  readonly created?: number;
  /** How long the signature is good for, in seconds (the expires parameter); none when absent. */
  readonly expiresIn?: number;
  /** A nonce: true for a random one (64 bytes, base64), or the value to send. */
  readonly nonce?: boolean | string;
  /** The tag parameter (`web-bot-auth`). */
  readonly tag?: string;
  /** Whether to send alg (a verifier that knows the key needs none; RFC 9421 3.3.7). Default true. */
  readonly withAlg?: boolean;
}

export interface SignatureFields {
  readonly 'signature-input': string;
  readonly signature: string;
}

/** The signature base (RFC 9421 2.5) and the inner list the fields repeat. */
export function signatureBase(request: SignedRequest, key: SignatureKey, options: SignatureOptions): { base: string; params: InnerList } {
  const created = options.created ?? Math.floor(Date.now() / 1000);
  const params = new Map<string, string | number>([['created', created]]);
  if (options.expiresIn !== undefined) params.set('expires', created + options.expiresIn);
  if (options.nonce !== undefined && options.nonce !== false) params.set('nonce', options.nonce === true ? randomBytes(64).toString('base64') : options.nonce);
  params.set('keyid', key.keyid);
  if (options.withAlg !== false) params.set('alg', key.alg);
  if (options.tag !== undefined) params.set('tag', options.tag);
  const inner: InnerList = [options.components.map(componentItem), params];
  const lines = options.components.map((c) => `${serializeItem(componentItem(c))}: ${componentValue(request, c)}`);
  lines.push(`"@signature-params": ${serializeInnerList(inner)}`);
  return { base: lines.join('\n'), params: inner };
}

/** Signs the request: the two fields to set on it. */
export function signRequest(request: SignedRequest, key: SignatureKey, options: SignatureOptions): SignatureFields {
  const { base, params } = signatureBase(request, key, options);
  const data = Buffer.from(base, 'utf8');
  const signature = key.alg === 'ed25519' ? sign(null, data, key.privateKey) : sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const label = options.label ?? 'sig1';
  return {
    'signature-input': serializeDictionary(new Map([[label, params]])),
    signature: serializeDictionary(new Map([[label, [toArrayBuffer(signature), new Map()]]])),
  };
}

/** RFC 9530 Content-Digest of a body, with SHA-256. */
export function contentDigest(body: Uint8Array): string {
  return serializeDictionary(new Map([['sha-256', [toArrayBuffer(createHash('sha256').update(body).digest()), new Map()]]]));
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
