import type { GrantType } from '../../config/index.ts';
import { KINDS } from './index.ts';
import { keywayKey, PEM_KEYS } from './json-keys.ts';

// What a type's secret is, for a person about to set it (the dashboard's help, through GET
// /api/grant-types): read off its kind, so every type registered in KINDS has it and no list
// elsewhere names the types.

export interface SecretForms {
  /** The kind's own words for its secret (GrantKind.shape), as a refusal gives them. */
  readonly shape: string;
  /** It is given as one line (a token, user:password, a PEM): the kind reads a line. */
  readonly line: boolean;
  /** Each JSON object it is given as, its fields as the shape writes them: {"a","b"?}. None: no JSON form. */
  readonly json: readonly string[];
  /** A JSON form holds a PEM (PEM_KEYS), read whatever its pasted line breaks became. */
  readonly pem: boolean;
  /** It is a client certificate and its key (its wire is the connection): the grant shows the certificate. */
  readonly certificate: boolean;
}

export function secretFormsOf(type: GrantType): SecretForms {
  const kind = KINDS[type];
  // A kind that reads a JSON object writes its fields in its shape between braces.
  const json = kind.object ? (kind.shape.match(/\{[^{}]*\}/g) ?? []) : [];
  const keys = json.flatMap((form) => [...form.matchAll(/"([^"]+)"/g)].map(([, key]) => keywayKey(key ?? '')));
  return {
    shape: kind.shape,
    line: kind.line !== undefined,
    json,
    pem: keys.some((key) => PEM_KEYS.includes(key)),
    certificate: kind.wire.by === 'connection',
  };
}
