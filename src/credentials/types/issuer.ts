import type { Dispatcher } from '../../net/undici.ts';
import type { IssuedCredential } from '../issuing/issued-credential.ts';
import type { Grant } from '../grant.ts';
import type { Credential, SecretMaterial } from '../material.ts';
import type { MintedToken, Minter } from '../issuing/minter.ts';
import type { Renewer } from '../issuing/renewer.ts';
import type { TokenStore } from '../issuing/token-store.ts';

// How a type's credential is issued (GrantKind.issuer), one of four, a union the request path
// narrows (credential-source.ts): from its material as it is, by an OAuth provider, minted by
// keyway from a key, or per request for whom it acts. Each carries what that way needs of the type
// and nothing else, so a type that says `minted` cannot compile without its minter.

export type Issuer = MaterialIssuer | OAuthIssuer | MintingIssuer | RequestIssuer;

/**
 * Its credential is its material (a token, a password, a key signed with): held in the store or
 * the config, or fetched on use from a command or a secret source.
 */
export interface MaterialIssuer {
  readonly by: 'material';
  /** The credential the material is; undefined: the material is not this type's. */
  credential(material: SecretMaterial): Credential | undefined;
  /**
   * Its material goes on the request as it is (a header, a query parameter, Basic): an upstream's 401
   * refused the secret itself, so one a command prints or a source holds is fetched again and the
   * request replayed. A signing type's replay would need a new signature over the body: false.
   */
  readonly refetchReplays: boolean;
  /** The material only ever signs for a credential renewed from it (aws_sigv4's assumed role), where a grant asks for one. */
  readonly renews?: RenewedFromMaterial;
}

/** Its tokens come from an OAuth provider's token endpoint, refreshed by keyway (issuing/oauth-tokens.ts). */
export interface OAuthIssuer {
  readonly by: 'oauth';
  /** A person consented (authorization code): a scope the upstream wants is added by consenting again (`keyway connect`). */
  readonly consented: boolean;
  /** It asks for each token with its client alone (client credentials): it renews without a refresh token. */
  readonly clientOnly: boolean;
}

/** Its credential is minted by keyway from a key (the audit line's secret_source names the type). */
export interface MintingIssuer {
  readonly by: 'minted';
  /** Mints with `mint` from the grant's settings and key; undefined when the material is not this type's key. */
  token(grant: Grant, material: SecretMaterial, mint: MintWith): Promise<MintedToken> | undefined;
  /**
   * How a minted token goes on a request to `host` (undefined: the host is not known); `boundKey`:
   * the key its minter bound it to, if any (MintedState.boundKey).
   */
  credential(grant: Grant, token: string, host: string | undefined, boundKey?: string): Credential;
}

/**
 * Its credential is issued per request, for whom the request acts (a token exchange; the audit
 * line's secret_source names the type): its own cache and single flight, since what it issues
 * depends on the request.
 */
export interface RequestIssuer {
  readonly by: 'request';
  issue(grant: Grant, material: SecretMaterial | undefined, forWhom: OnBehalf, context: IssueContext): Promise<IssuedCredential>;
  /** After an upstream refused `used`: the held one dropped, a fresh one issued. */
  afterRejection(grant: Grant, material: SecretMaterial | undefined, forWhom: OnBehalf, used: Credential, context: IssueContext): Promise<IssuedCredential>;
}

/** A credential renewed from the one the material is, by the process's Renewer (aws_sigv4's assume_role). */
export interface RenewedFromMaterial {
  /** Whether this grant renews one (aws_sigv4: one with assume_role); else its material's credential goes on the request. */
  renewsFor(grant: Grant): boolean;
  /** The renewed credential, from the held one (a renewal first when due). */
  get(grant: Grant, held: Credential, context: RenewContext): Promise<IssuedCredential>;
  /** Renews now, whatever the held one's expiry (`keyway refresh`): the new one's expiry (epoch ms). */
  renewNow(grant: Grant, held: Credential, context: RenewContext): Promise<number>;
}

/** Mints a token with a minter for a spec, single flight per grant (issuing/minted-tokens.ts). */
export type MintWith = <S>(minter: Minter<S>, spec: S) => Promise<MintedToken>;

/** For whom a request's credential is issued: its agent, and the identity token it proved, if any. */
export interface OnBehalf {
  readonly agent: string;
  /** The identity token the agent's connection signed in with (config identities:), verified. */
  readonly identityToken: string | undefined;
  /** A delegated agent's chain, root first, the agent last (delegation/chain.ts); undefined for a root agent. */
  readonly chain?: readonly string[] | undefined;
}

/** What a type that issues its own credentials is given to reach a token endpoint. */
export interface IssueContext {
  readonly dispatcher: Dispatcher | undefined;
  readonly timeoutMs: number;
  /** The environment keyway started with, and its home: where a reference the type reads on use (env:, file:) is resolved. */
  readonly env: NodeJS.ProcessEnv;
  readonly home: string;
}

/**
 * What a type that renews a credential from its material is given: the process's one Renewer (its
 * single flight, backoff and memory per grant), the store renewals are kept in, and how its
 * endpoint is reached.
 */
export interface RenewContext {
  readonly renewer: Renewer;
  readonly store: TokenStore;
  readonly dispatcher: Dispatcher | undefined;
  readonly timeoutMs: number;
}
