import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { loadJose } from '../credentials/jose.ts';
import { LRUCache } from 'lru-cache';
import { IDENTITY_ALGORITHMS, type IdentityConfig } from '../config/index.ts';
import type { Dispatcher } from '../net/undici.ts';
import { compileClaimRules, mapClaims, type CompiledClaimRule } from './claims.ts';
import { IssuerKeys, KeysUnavailable, type KeyUrlGuard } from './issuer-keys.ts';
import { beyondLimits } from './token-limits.ts';

// An identity token (a JWT from a trusted issuer, config identities:) checked and mapped to an agent.
// Checked by jose: the signature with the issuer's key of the token's `kid` (public-key algorithms
// only, the algorithm matched to the key's type), `iss` exactly, `aud`, `exp` (required), `nbf`,
// within the issuer's clock_skew; then keyway's own limits (token-limits.ts: iat not in the future,
// a lifetime within max_token_lifetime, sub a string). Then the first map rule whose claims match names the agent.
// A token that passed is remembered until its exp (by its SHA-256), so an agent that opens many
// connections with one token pays for one signature check.

/** The longest identity token read; real ones are 1-2 KiB. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const REMEMBERED_TOKENS = 10_000;
/** An audit line's `identity.sub` is cut to this many characters. */
const MAX_SUBJECT = 256;

export interface ProvenIdentity {
  readonly iss: string;
  readonly sub: string;
}

export interface VerifiedToken {
  readonly agent: string;
  readonly identity: ProvenIdentity;
  /** Epoch ms of the token's exp, plus the issuer's clock_skew: past it, its connections are refused. */
  readonly expiresAt: number;
  /** The token's verified claims: a connection maps them again after a reload (mapAgain). */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Why a token was not taken. `refused`: the token itself (expired, wrong audience, bad signature,
 * unmapped); `unavailable`: keyway could not get the issuer's keys, which says nothing of the token.
 */
export class IdentityRefused extends Error {
  readonly kind: 'refused' | 'unavailable';
  /** The identity the token proved, when it was sound but no rule maps it. */
  readonly identity: ProvenIdentity | undefined;
  constructor(kind: 'refused' | 'unavailable', message: string, identity?: ProvenIdentity) {
    super(message);
    this.kind = kind;
    this.identity = identity;
  }
}

interface Issuer {
  readonly config: IdentityConfig;
  readonly keys: IssuerKeys;
  readonly rules: readonly CompiledClaimRule[];
}

export interface VerifierOptions {
  readonly home: string;
  /** How keys and discovery documents are fetched: keyway's upstream client, with its egress checks. */
  readonly dispatcher: Dispatcher;
  /** Refuses key URLs on keyway's own listeners (and other refused destinations) before a fetch. */
  readonly guard?: KeyUrlGuard | undefined;
  readonly now?: () => number;
}

export class IdentityVerifier {
  readonly #issuers = new Map<string, Issuer>();
  readonly #now: () => number;
  readonly #passed = new LRUCache<string, VerifiedToken>({ max: REMEMBERED_TOKENS });

  constructor(identities: readonly IdentityConfig[], options: VerifierOptions, previous?: IdentityVerifier) {
    this.#now = options.now ?? Date.now;
    for (const config of identities) {
      const jwks = config.jwks === undefined || /^https?:\/\//i.test(config.jwks) || isAbsolute(config.jwks) ? config.jwks : resolve(options.home, config.jwks);
      // A reload that leaves an issuer's keys where they were keeps the keys already fetched.
      const kept = previous === undefined ? undefined : previous.#issuers.get(config.issuer);
      const keys =
        kept && kept.config.jwks === config.jwks
          ? kept.keys
          : new IssuerKeys({ issuer: config.issuer, jwks, dispatcher: options.dispatcher, guard: options.guard, now: this.#now });
      this.#issuers.set(config.issuer, { config, keys, rules: compileClaimRules(config.map) });
    }
  }

  get size(): number {
    return this.#issuers.size;
  }

  /** Each issuer's keys, for keyway doctor: fetched now, or why they could not be. */
  async check(): Promise<Array<{ issuer: string; keys: number | undefined; error: string | undefined }>> {
    const out = [];
    for (const [issuer, { keys }] of this.#issuers) {
      try {
        out.push({ issuer, keys: (await keys.keys()).keys.length, error: undefined });
      } catch (err) {
        out.push({ issuer, keys: undefined, error: (err as Error).message });
      }
    }
    return out;
  }

  /** The agent a token maps to, and the identity it proved; throws IdentityRefused. */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_LENGTH) throw new IdentityRefused('refused', `the identity token is longer than ${MAX_TOKEN_LENGTH} characters`);
    const digest = createHash('sha256').update(token).digest('base64url');
    const known = this.#passed.get(digest);
    if (known !== undefined && known.expiresAt > this.#now()) return known;
    const jose = await loadJose();
    const issuer = this.#issuerOf(token, jose);
    const payload = await this.#checked(token, issuer, jose);
    const identity = { iss: issuer.config.issuer, sub: String(payload.sub).slice(0, MAX_SUBJECT) };
    const agent = mapClaims(issuer.rules, payload as Record<string, unknown>);
    if (agent === undefined)
      throw new IdentityRefused('refused', `no identities rule of ${identity.iss} maps this token (sub ${identity.sub}) to an agent`, identity);
    const verified: VerifiedToken = {
      agent,
      identity,
      expiresAt: (payload.exp as number) * 1000 + issuer.config.clock_skew,
      claims: Object.freeze({ ...(payload as Record<string, unknown>) }),
    };
    this.#passed.set(digest, verified);
    return verified;
  }

  /**
   * The agent that claims verified earlier map to under the identities in force now: undefined when
   * the issuer is no longer trusted or no rule maps them any more. No signature is checked again
   * (the token was verified once, and its connection ends at its exp).
   */
  mapAgain(iss: string, claims: Readonly<Record<string, unknown>>): string | undefined {
    const issuer = this.#issuers.get(iss);
    return issuer === undefined ? undefined : mapClaims(issuer.rules, claims);
  }

  #issuerOf(token: string, jose: Jose): Issuer {
    let iss: unknown;
    try {
      iss = jose.decodeJwt(token).iss;
    } catch {
      throw new IdentityRefused('refused', 'the identity token is not a JWT');
    }
    const issuer = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (issuer === undefined)
      throw new IdentityRefused('refused', `the identity token's issuer ${typeof iss === 'string' ? iss.slice(0, 200) : '(none)'} is not in identities`);
    return issuer;
  }

  async #checked(token: string, issuer: Issuer, jose: Jose): Promise<JWTPayload> {
    const { createLocalJWKSet, errors, jwtVerify } = jose;
    const { config, keys } = issuer;
    const options = {
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: config.clock_skew / 1000,
      algorithms: [...(config.algorithms ?? IDENTITY_ALGORITHMS)],
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(this.#now()),
    };
    for (let attempt = 0; ; attempt++) {
      let held: JSONWebKeySet;
      try {
        held = await keys.keys();
      } catch (err) {
        throw new IdentityRefused('unavailable', `the keys of ${config.issuer} could not be had: ${err instanceof KeysUnavailable ? err.message : 'error'}`);
      }
      let payload: JWTPayload;
      try {
        payload = (await jwtVerify(token, createLocalJWKSet(held), options)).payload;
      } catch (err) {
        // A key id keyway does not hold: the issuer may have rotated its keys. Fetch once, try again.
        if (err instanceof errors.JWKSNoMatchingKey && attempt === 0 && (await keys.refetch())) continue;
        // jose checks claims only once the signature holds: an expired token's identity is proven, and said.
        throw new IdentityRefused('refused', reasonOf(err, errors), err instanceof errors.JWTExpired ? provenBy(err.payload, config.issuer) : undefined);
      }
      const beyond = beyondLimits(payload, { clockSkew: config.clock_skew, maxLifetime: config.max_token_lifetime }, this.#now());
      if (beyond !== undefined) throw new IdentityRefused('refused', beyond);
      return payload;
    }
  }
}

type Jose = Awaited<ReturnType<typeof loadJose>>;

/** The identity a payload whose signature held proves (iss as configured, sub when it is a string). */
function provenBy(payload: JWTPayload, issuer: string): ProvenIdentity | undefined {
  return typeof payload.sub === 'string' ? { iss: issuer, sub: payload.sub.slice(0, 512) } : undefined;
}

/** jose's failure in words for the 407 and the audit line (never a claim value an attacker chose, beyond its name). */
function reasonOf(err: unknown, errors: Jose['errors']): string {
  if (err instanceof errors.JWTExpired) return 'the identity token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return "the identity token is for another audience (its aud is not this identity's audience)";
    if (err.claim === 'iss') return "the identity token's iss does not match its issuer";
    if (err.claim === 'nbf') return 'the identity token is not valid yet (nbf)';
    if (err.claim === 'iat') return "the identity token's iat is in the future";
    return `the identity token's ${err.claim} claim is missing or wrong`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return "the identity token's algorithm is not accepted (public-key signatures only, no none, no HMAC)";
  if (err instanceof errors.JWKSNoMatchingKey)
    return "the identity token names no key its issuer publishes (kid, or an algorithm that does not fit the key's type)";
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'the identity token has no kid and its issuer publishes several keys for its algorithm';
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the identity token's signature does not verify";
  if (err instanceof errors.JOSENotSupported) return "the identity token's algorithm or key is not supported";
  return 'the identity token is malformed';
}
