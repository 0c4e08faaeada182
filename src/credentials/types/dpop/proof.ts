import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { loadJose } from '../../jose.ts';
import { LRUCache } from 'lru-cache';

// RFC 9449 (DPoP): a token bound to a key keyway holds. Every request (the token endpoint's and the
// resource's) carries a fresh proof: a JWT signed with that key, naming the method and the URL
// (without its query), when, a unique id, the server's nonce when it asked for one, and on a
// resource request the token's hash. The key never leaves keyway.

export type DpopAlgorithm = 'ES256' | 'EdDSA';

export interface DpopKey {
  readonly privateKey: KeyObject;
  readonly alg: DpopAlgorithm;
  /** The public JWK the proofs carry in their header. */
  readonly jwk: JWK;
  /** RFC 7638 thumbprint: what a bound token's cnf.jkt names. */
  readonly thumbprint: string;
}

/** A DPoP key from its private key (P-256: ES256; Ed25519: EdDSA). */
export async function dpopKey(privateKey: KeyObject): Promise<DpopKey> {
  const full = privateKey.export({ format: 'jwk' }) as JWK;
  const jwk: JWK = full.kty === 'OKP' ? { kty: 'OKP', crv: full.crv!, x: full.x! } : { kty: 'EC', crv: full.crv!, x: full.x!, y: full.y! };
  if (jwk.kty === 'EC' && jwk.crv !== 'P-256') throw new Error(`a DPoP key on ${jwk.crv} is not one keyway proves with (P-256, Ed25519)`);
  const { calculateJwkThumbprint } = await loadJose();
  return { privateKey, alg: jwk.kty === 'OKP' ? 'EdDSA' : 'ES256', jwk, thumbprint: await calculateJwkThumbprint(jwk) };
}

export interface ProofFor {
  readonly method: string;
  /** The request's URL; its query and fragment are left out of htu (RFC 9449 4.2). */
  readonly url: string;
  /** On a resource request: the access token, whose hash goes in ath. */
  readonly accessToken?: string | undefined;
  /** The server's last DPoP-Nonce, if it gave one. */
  readonly nonce?: string | undefined;
}

/** A fresh proof for one request. */
export async function dpopProof(key: DpopKey, proof: ProofFor, now = Date.now()): Promise<string> {
  const url = new URL(proof.url);
  const claims: Record<string, unknown> = { htm: proof.method, htu: `${url.origin}${url.pathname}`, jti: randomUUID() };
  if (proof.accessToken !== undefined) claims['ath'] = createHash('sha256').update(proof.accessToken).digest('base64url');
  if (proof.nonce !== undefined) claims['nonce'] = proof.nonce;
  const { SignJWT } = await loadJose();
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk })
    .setIssuedAt(Math.floor(now / 1000))
    .sign(key.privateKey);
}

/**
 * The nonce a server asks a retry to carry, or undefined: a token endpoint answers 400 with
 * `{"error":"use_dpop_nonce"}`, a resource 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"`;
 * both send the nonce in DPoP-Nonce (RFC 9449 8, 9).
 */
export function nonceAsked(status: number, headers: Readonly<Record<string, string | string[] | undefined>>, body?: string): string | undefined {
  const nonce = one(headers['dpop-nonce']);
  if (nonce === undefined || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(nonce)) return undefined;
  if (status === 401) return dpopChallengeError(headers['www-authenticate']) === 'use_dpop_nonce' ? nonce : undefined;
  if (status === 400 && body !== undefined) {
    try {
      return (JSON.parse(body) as { error?: unknown }).error === 'use_dpop_nonce' ? nonce : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The `error` of the DPoP challenge among an answer's WWW-Authenticate fields (RFC 9449 7.1: one
 * field may hold several challenges, and several fields may come), or undefined without one.
 */
export function dpopChallengeError(field: string | readonly string[] | undefined): string | undefined {
  const values = field === undefined ? [] : typeof field === 'string' ? [field] : field;
  for (const value of values) {
    // Commas outside quotes part the challenges' pieces; a piece that starts with a scheme (a token
    // and a space) begins a new challenge, the others are its parameters.
    let inDpop = false;
    for (const piece of value.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const scheme = /^\s*([!#$%&'*+.^_`|~\w-]+)(?:\s+|$)(?![=])/.exec(piece);
      let params = piece;
      if (scheme && !/^\s*[!#$%&'*+.^_`|~\w-]+\s*=/.test(piece)) {
        inDpop = scheme[1]!.toLowerCase() === 'dpop';
        params = piece.slice(scheme[0].length);
      }
      if (!inDpop) continue;
      const error = /(?:^|\s)error\s*=\s*(?:"([^"]*)"|([!#$%&'*+.^_`|~\w-]+))/i.exec(params);
      if (error) return error[1] ?? error[2];
    }
  }
  return undefined;
}

/** The nonces servers gave, per origin (a server may rotate its nonce on any answer: the newest is kept). */
export class DpopNonces {
  readonly #byOrigin = new LRUCache<string, string>({ max: 1024 });

  get(url: string): string | undefined {
    return this.#byOrigin.get(new URL(url).origin);
  }

  /** Keeps the DPoP-Nonce an answer carried, if any. */
  heard(url: string, headers: Readonly<Record<string, string | string[] | undefined>>): void {
    const nonce = one(headers['dpop-nonce']);
    if (nonce !== undefined && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(nonce)) this.#byOrigin.set(new URL(url).origin, nonce);
  }
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
