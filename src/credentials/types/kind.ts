import type { z } from 'zod';
import type { GRANT_TYPE_FIELDS } from './fields.ts';
import { type GrantType, isBlankSecret } from '../../config/index.ts';
import type { Injector } from '../injectors/index.ts';
import type { Grant } from '../grant.ts';
import type { Credential, SecretMaterial } from '../material.ts';
import type { Issuer } from './issuer.ts';
import type { Wire } from './wire.ts';

// What keyway asks of a credential type, in one shape; each type is one folder beside this file,
// and index.ts registers them in one record keyed by every type (a type left out does not compile).
// How its credential is issued (issuer.ts) and how it goes on the request (wire.ts) are one member
// each, a union the compiler narrows: a type that says it mints gives its minter.

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
export type KindSettings = Partial<Pick<Grant, 'settings' | 'logins' | 'guard' | 'retry'>>;

/** A secret given as a JSON object, its keys in camelCase (snake_case and AWS's own spellings read too). */
export interface ObjectInput {
  readonly obj: Readonly<Record<string, unknown>>;
  /** A non-empty string member, or undefined when it is absent and not `required`; throws naming the key, never the value. */
  str(key: string, required: boolean): string | undefined;
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
  /** How its credential is issued: from the material as it is, by an OAuth provider, minted by keyway, or per request. */
  readonly issuer: Issuer;
  /** How its credential goes on the request: injected, signed with, or presented on the connection. */
  readonly wire: Wire<OwnFields<T>>;
  /** How it goes on the wire, for listings, where it says more than its injector's describe(). */
  describe?(fields: OwnFields<T>, injector: Injector): string;
  /** Its own settings, compiled. */
  compile(fields: OwnFields<T>): KindSettings;
  /** When the secret itself stops working (a jwt's exp), read from the material; absent: it has no clock of its own. */
  expiresAt?(material: SecretMaterial): number | undefined;
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

export const noSettings = (): KindSettings => ({});
export const blank = (v: unknown): boolean => typeof v === 'string' && isBlankSecret(v);
/** One non-blank line, as a token. */
export const textUsable = (material: SecretMaterial): boolean => typeof material === 'string' && !isBlankSecret(material);
export const asToken = (material: SecretMaterial): Credential | undefined => (typeof material === 'string' ? { kind: 'token', value: material } : undefined);
/** Material of an object form, with the fields `ok` checks. */
export const objectUsable =
  <M>(ok: (m: Partial<M>) => boolean) =>
  (material: SecretMaterial): boolean =>
    typeof material === 'object' && ok(material as Partial<M>);
