import type { GrantTypeFields } from './type-fields.ts';

// The fields of a type whose secret is the credential itself, sent as it is: no keys of its own.

export function secretOnly<T extends GrantTypeFields['type']>(type: T) {
  return { type, shape: {}, secretRequired: true } satisfies GrantTypeFields<T>;
}
