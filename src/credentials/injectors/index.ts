import type { InjectConfig } from '../../config/index.ts';
import type { GrantType } from '../../config/index.ts';
import type { Credential } from '../material.ts';
import { KeywayError } from '../../errors/index.ts';

// How a credential goes on the wire. Pure functions on the outgoing request: no I/O, no state.

export type OutgoingHeaders = Record<string, string | string[]>;

export interface OutgoingRequest {
  headers: OutgoingHeaders;
  /** Path and query, as sent upstream. */
  path: string;
}

export interface Injector {
  /** Human description for listings, e.g. `header Authorization: Bearer {secret}`. */
  describe(): string;
  /** Replaces whatever credential the client put in the same place. */
  apply(request: OutgoingRequest, credential: Credential): void;
  /** Header names that carry the credential (lowercase): for redaction and leak checks. */
  readonly headerName: string | undefined;
}

export function headerInjector(name: string, format: string): Injector {
  const key = name.toLowerCase();
  return {
    headerName: key,
    describe: () => `header ${name}: ${format}`,
    apply(request, credential) {
      const secret = credential.kind === 'token' ? credential.value : basicToken(credential);
      // split/join rather than replace(): a `$` in a secret is not a replacement pattern here.
      request.headers[key] = format.split('{secret}').join(secret);
    },
  };
}

export function basicInjector(): Injector {
  return {
    headerName: 'authorization',
    describe: () => 'header Authorization: Basic {username:password}',
    apply(request, credential) {
      const token = credential.kind === 'basic' ? basicToken(credential) : credential.value;
      request.headers['authorization'] = `Basic ${token}`;
    },
  };
}

export function queryInjector(param: string): Injector {
  return {
    headerName: undefined,
    describe: () => `query ${param}={secret}`,
    apply(request, credential) {
      const value = credential.kind === 'token' ? credential.value : basicToken(credential);
      const q = request.path.indexOf('?');
      const pathname = q === -1 ? request.path : request.path.slice(0, q);
      const params = new URLSearchParams(q === -1 ? '' : request.path.slice(q + 1));
      params.set(param, value);
      request.path = `${pathname}?${params.toString()}`;
    },
  };
}

function basicToken(credential: Extract<Credential, { kind: 'basic' }>): string {
  return Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
}

/** The injector a grant uses: its own `inject` settings, else its type's default. */
export function injectorFor(type: GrantType, inject: InjectConfig | undefined): Injector {
  if (inject?.query) return queryInjector(inject.query);
  if (inject?.header) return headerInjector(inject.header, inject.format ?? '{secret}');
  if (inject?.format) return headerInjector('Authorization', inject.format);
  if (type === 'basic') return basicInjector();
  if (type === 'api_key') throw new KeywayError('usage', 'an api_key grant needs --header/--format or --query');
  return headerInjector('Authorization', 'Bearer {secret}');
}
