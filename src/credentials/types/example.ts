import type { z } from 'zod';
import type { GrantType, InjectConfig } from '../../config/index.ts';
import type { TypeShape } from './fields.ts';

// A sample grant of each type, kept in the type's folder (<type>/example.ts) and registered in
// examples.ts beside KINDS: the contract test (contract.test.ts) walks every type through them, from
// its secret to the listing's words, so a type added without a capability fails a test.

/** A type's own keys as the config gives them (before defaults), parsed by its fields' schema. */
export type ExampleFields<T extends GrantType> = z.input<z.ZodObject<TypeShape<T>>>;

export interface KindExample<T extends GrantType> {
  /** A secret as `keyway secrets set` takes it (made on the spot where it is a fresh key); null: the type has none. */
  readonly secret: (() => string) | null;
  /** A secret of the same shape with what authenticates left blank: refused by the parse, or not usable. */
  readonly blank: string;
  /** The grant's own keys. */
  readonly fields: ExampleFields<T>;
  /** Its inject settings, where the type needs some to know where its credential goes (api_key). */
  readonly inject?: InjectConfig;
  /** A minted type whose minter binds each token to a key it makes (dpop): one such key, as the minter stores it. */
  readonly boundKey?: () => string;
  /** What a listing says of how its credential goes on the request. */
  readonly describes: string;
}
