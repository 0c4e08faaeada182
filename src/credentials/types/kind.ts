import type { z } from 'zod';
import type { GRANT_TYPE_FIELDS } from './fields.ts';
import { type GrantType, isBlankSecret } from '../../config/index.ts';
import type { InjectConfig } from '../../config/index.ts';
import type { Injector } from '../injectors/index.ts';
import type { Grant } from '../grant.ts';
import type { IssuedCredential } from '../issuing/issued-credential.ts';
import type { Dispatcher } from '../../net/undici.ts';
import type { Credential, SecretMaterial } from '../material.ts';
import type { MintedToken, Minter } from '../issuing/minter.ts';

// What keyway asks of a credential type, in one shape; each type is one file beside this one, and
// index.ts registers them in one record keyed by every type (a type left out does not compile).

/**
 * A grant's type's own keys where they are not narrowed (a stored grant, the config's grant read
 * whole): each kind reads its own, narrowed, as OwnFields; nothing else reads them.
 */
export interface KindFields {
  readonly [key: string]: unknown;
}

/** A type's own keys, as its fields (types/<type>/fields.ts) parse them: the grant union's member, narrowed. */
export type OwnFields<T extends GrantType> = z.output<z.ZodObject<(typeof GRANT_TYPE_FIELDS)[T]['shape']>>;

/** What a type compiles of its settings, once per table build (the rest of a Grant is every type's). */
export type KindSettings = Partial<Pick<Grant, 'settings' | 'signer' | 'logins' | 'guard' | 'retry'>>;

/** A secret given as a JSON object, its keys in camelCase (snake_case and AWS's own spellings read too). */
export interface ObjectInput {
  readonly obj: Readonly<Record<string, unknown>>;
  /** A non-empty string member, or undefined when it is absent and not `required`; throws naming the key, never the value. */
  str(key: string, required: boolean): string | undefined;
}

/** For whom a request's credential is issued: its agent, and the identity token it proved, if any. */
export interface OnBehalf {
  readonly agent: string;
  /** The identity token the agent's connection signed in with (config identities:), verified. */
  readonly identityToken: string | undefined;
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
 * A type that issues each request's credential itself, for whom the request acts (a token
 * exchange): its own cache and single flight, since what it issues depends on the request.
 */
export interface IssuingKind {
  issue(grant: Grant, material: SecretMaterial | undefined, forWhom: OnBehalf, context: IssueContext): Promise<IssuedCredential>;
  /** After an upstream refused `used`: the held one dropped, a fresh one issued. */
  afterRejection(grant: Grant, material: SecretMaterial | undefined, forWhom: OnBehalf, used: Credential, context: IssueContext): Promise<IssuedCredential>;
}

export interface GrantKind<T extends GrantType = GrantType> {
  readonly type: T;
  /**
   * What its secret is, for a refusal and for the dashboard's help (secret-forms.ts): the fields,
   * never the text given. Each JSON object form is written with its fields between braces, {"a","b"?}.
   */
  readonly shape: string;
  /**
   * Its material from one line (a token, `user:password`); undefined: this text is for `object`
   * (basic's JSON form). Absent: the type's material is a JSON object only.
   */
  line?(text: string): SecretMaterial | undefined;
  /** Its material from a JSON object. Absent: the type's material is one line only. */
  object?(input: ObjectInput): SecretMaterial;
  /**
   * Whether material can authenticate: no empty or whitespace-only token, password or key. Material
   * stored before these checks existed (or written by hand) is checked again on use.
   */
  usable(material: SecretMaterial): boolean;
  /** The credential a static grant's material is (minted and OAuth types: undefined, theirs is issued). */
  credential(material: SecretMaterial): Credential | undefined;
  /** How its credential goes on the request: the grant's own `inject` settings where the type takes them, else its default. Refuses settings it takes none of. */
  injector(inject: InjectConfig | undefined): Injector;
  /** How it goes on the wire, for listings, where it says more than its injector's describe(). */
  describe?(fields: OwnFields<T>, injector: Injector): string;
  /** Its own settings, compiled. */
  compile(fields: OwnFields<T>): KindSettings;
  /**
   * Its secret is a client certificate and key (mtls): set with --client-certificate, shown as its
   * certificate, and the grant's client_certificate in the config is its secret.
   */
  readonly certificateIsSecret?: true;
  /** When the secret itself stops working (a jwt's exp), read from the material; absent: it has no clock of its own. */
  expiresAt?(material: SecretMaterial): number | undefined;
  /** Its tokens come from an OAuth provider's token endpoint, refreshed by keyway (issuing/oauth-tokens.ts). */
  readonly oauth?: {
    /** A person consented (authorization code): a scope the upstream wants is added by consenting again (`keyway connect`). */
    readonly consented: boolean;
    /** It asks for each token with its client alone (client credentials): it renews without a refresh token. */
    readonly clientOnly: boolean;
  };
  /**
   * Its secret goes on the request as it is (a header, a query parameter, Basic): an upstream's 401
   * refused the secret itself, so one a command prints is asked for again and the request replayed.
   */
  readonly sendsSecret?: true;
  /** Its credential is minted by keyway from a key (the audit line's secret_source names the type): how. */
  readonly mints?: MintedKind;
  /** Its credential is issued per request, for whom it acts (the audit line's secret_source names the type): how. */
  readonly issues?: IssuingKind;
  /**
   * A public document it serves on the admin listener at /.well-known/<name> (http_signature's key
   * directory), made from every grant of the type whose secret keyway holds. Open: never a secret.
   */
  readonly publishes?: PublishedDocument;
  /** A config secret's text (env:, file:) is parsed and checked as `secrets set` does; else it is taken as it is (a token). */
  readonly parsesConfigSecret: boolean;
}

export interface PublishedDocument {
  /** The name under /.well-known/. */
  readonly name: string;
  readonly mediaType: string;
  document(grants: readonly Grant[]): unknown;
}

/** Mints a token with a minter for a spec, single flight per grant (issuing/minted-tokens.ts). */
export type MintWith = <S>(minter: Minter<S>, spec: S) => Promise<MintedToken>;

/** A type whose credential keyway mints from a key (a GitHub App's installation token, a service account's access token). */
export interface MintedKind {
  /** Mints with `mint` from the grant's settings and key; undefined when the material is not this type's key. */
  token(grant: Grant, material: SecretMaterial, mint: MintWith): Promise<MintedToken> | undefined;
  /**
   * How a minted token goes on a request to `host` (undefined: the host is not known); `boundKey`:
   * the key its minter bound it to, if any (MintedState.boundKey).
   */
  credential(grant: Grant, token: string, host: string | undefined, boundKey?: string): Credential;
}

export const noSettings = (): KindSettings => ({});
export const blank = (v: unknown): boolean => typeof v === 'string' && isBlankSecret(v);
/** One non-blank line, as a token. */
export const textUsable = (material: SecretMaterial): boolean => typeof material === 'string' && !isBlankSecret(material);
export const asToken = (material: SecretMaterial): Credential | undefined => (typeof material === 'string' ? { kind: 'token', value: material } : undefined);
/** OAuth and minted types: their credential is issued, not read from the material. */
export const issued = (): undefined => undefined;
/** Material of an object form, with the fields `ok` checks. */
export const objectUsable =
  <M>(ok: (m: Partial<M>) => boolean) =>
  (material: SecretMaterial): boolean =>
    typeof material === 'object' && ok(material as Partial<M>);
