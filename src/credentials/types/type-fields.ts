import type { z } from 'zod';
import type { GrantType } from '../../config/ids.ts';

// One credential type's part of a grant, as the config, `keyway grants add` and the admin API take
// it. A grant is every grant's fields (grant-fields.ts) and one of these, chosen by `type`
// (index.ts): a key another type owns is refused by the schema itself, naming its owner.

/** Records a refusal at one of the grant's keys. */
export type Fail = (key: string, message: string) => void;

/** What a type's checks read of a grant: its own keys, and what every grant has. */
export interface GrantView {
  readonly type: GrantType;
  readonly inject?: { readonly header?: string | undefined; readonly query?: string | undefined; readonly body?: unknown } | undefined;
  /** The config's secret: a reference or a command (config only). */
  readonly secret?: { readonly kind: string } | undefined;
  /** The config's client certificate (config only). */
  readonly client_certificate?: unknown;
  readonly [key: string]: unknown;
}

export interface GrantTypeFields<T extends GrantType = GrantType> {
  readonly type: T;
  /** The keys only this type takes (several types may share one: max_signed_body). */
  readonly shape: z.core.$ZodLooseShape;
  /** Rules across its own keys, wherever a grant is written. */
  check?(grant: GrantView, fail: Fail): void;
  /**
   * Rules on a grant as the config writes it (its secret reference, its inject settings): a grant
   * written through `keyway grants add` or the admin API is checked against its type's injector,
   * in the command line's words, instead (operations/grants.ts).
   */
  configCheck?(grant: GrantView, fail: Fail): void;
  /** Why it takes no inject settings (it signs, or presents a certificate); absent: it takes them. */
  readonly noInject?: string;
  /** The config must name its secret (the secret is the credential); else it may come later or from elsewhere. */
  readonly secretRequired: boolean;
}
