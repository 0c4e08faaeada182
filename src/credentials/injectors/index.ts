import type { InjectConfig } from '../../config/index.ts';
import type { Credential } from '../material.ts';
import { KeywayError, ProxyError } from '../../errors/index.ts';

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
  // The format is the grant's: split once, when the grant is built, not per request. Joined rather
  // than replace()d: a `$` in a secret is not a replacement pattern here.
  const parts = format.split('{secret}');
  // The value for the last secret seen: a grant's requests carry the same secret until it rotates,
  // and each would otherwise build (and undici flatten) the same string again.
  let lastSecret: string | undefined;
  let lastValue = '';
  return {
    headerName: key,
    describe: () => `header ${name}: ${format}`,
    apply(request, credential) {
      const secret = credentialText(credential);
      if (secret !== lastSecret) {
        lastValue = parts.join(secret);
        lastSecret = secret;
      }
      request.headers[key] = lastValue;
    },
  };
}

export function basicInjector(): Injector {
  return {
    headerName: 'authorization',
    describe: () => 'header Authorization: Basic {username:password}',
    apply(request, credential) {
      const token = credentialText(credential);
      request.headers['authorization'] = `Basic ${token}`;
    },
  };
}

export function queryInjector(param: string): Injector {
  return {
    headerName: undefined,
    describe: () => `query ${param}={secret}`,
    apply(request, credential) {
      const value = credentialText(credential);
      const q = request.path.indexOf('?');
      const pathname = q === -1 ? request.path : request.path.slice(0, q);
      const params = new URLSearchParams(q === -1 ? '' : request.path.slice(q + 1));
      params.set(param, value);
      request.path = `${pathname}?${params.toString()}`;
    },
  };
}

/** What a header or query parameter carries: the token, or Basic's base64 pair. Never an AWS key: that is signed with. */
function credentialText(credential: Credential): string {
  if (credential.kind === 'token') return credential.value;
  if (credential.kind === 'basic') return basicToken(credential);
  if (credential.kind === 'none' || credential.kind === 'captured') return '';
  throw new ProxyError('internal_error', 'a signing key (aws_sigv4, hmac) is only ever signed with, never put on the request');
}

function basicToken(credential: Extract<Credential, { kind: 'basic' }>): string {
  return Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
}

/**
 * aws_sigv4: the client's own signature (made with placeholder keys) and security token come off
 * here; the request is signed again once its body is known (proxy/stages/body.ts, awsSign).
 */
export function awsSigV4Injector(): Injector {
  return {
    headerName: 'authorization',
    describe: () => 'AWS Signature Version 4, signed again per request',
    apply(request) {
      delete request.headers['authorization'];
      delete request.headers['x-amz-security-token'];
    },
  };
}

/**
 * hmac: nothing goes on at this point; the scheme signs the request once its body is known
 * (proxy/stages/body.ts, hmacSign), replacing the client's placeholder signature headers.
 */
export function hmacInjector(): Injector {
  return {
    headerName: undefined,
    describe: () => "HMAC signature, per the grant's sign: scheme",
    apply() {},
  };
}

/** inject: {body: true} alone: nothing on the head; the body swap puts the secret on the request. */
export function bodyOnlyInjector(): Injector {
  return {
    headerName: undefined,
    describe: () => 'body: keyway-placeholder-<grant id> replaced by the secret',
    apply() {},
  };
}

/** mtls: nothing goes on the request; the grant's client certificate goes on the connection (egress/client-tls.ts). */
export function noInjector(): Injector {
  return {
    headerName: undefined,
    describe: () => 'client certificate on the connection',
    apply() {},
  };
}

/** The secret a body swap puts where the grant's placeholder was: a token grant's token, else none. */
export function bodySecret(credential: Credential): string | undefined {
  return credential.kind === 'token' ? credential.value : undefined;
}

/**
 * github_app: the installation token as `Authorization: Bearer` on the API host, and as Basic
 * `x-access-token:TOKEN` on the grant's other hosts (git over HTTPS): the credential source picks
 * the form by host (credential-source.ts), this writes either.
 */
export function githubAppInjector(): Injector {
  return {
    headerName: 'authorization',
    describe: () => 'header Authorization: Bearer {installation token} (Basic x-access-token:{token} off the API host)',
    apply(request, credential) {
      request.headers['authorization'] = credential.kind === 'basic' ? `Basic ${basicToken(credential)}` : `Bearer ${credentialText(credential)}`;
    },
  };
}

/**
 * The injector a grant's own `inject` settings make (query, body only, header, format), or
 * undefined when they name none: then its type's default applies (types/<type>/kind.ts, GrantKind.injector).
 */
export function configuredInjector(inject: InjectConfig | undefined): Injector | undefined {
  if (inject?.query) return queryInjector(inject.query);
  // Body only: the secret goes where the agent wrote the grant's placeholder (proxy/stages/body-swap.ts).
  if (inject?.body && !inject.header && !inject.format) return bodyOnlyInjector();
  if (inject?.header) return headerInjector(inject.header, inject.format ?? '{secret}');
  if (inject?.format) return headerInjector('Authorization', inject.format);
  return undefined;
}

/** The default of token types: `Authorization: Bearer {secret}`. */
export function bearerInjector(): Injector {
  return headerInjector('Authorization', 'Bearer {secret}');
}

/** A type that puts its credential on the wire itself refuses `inject` settings, naming those it takes none of. */
export function refuseInjectSettings(inject: InjectConfig | undefined, why: string, body: boolean): void {
  if (inject === undefined) return;
  if (inject.header !== undefined || inject.query !== undefined || inject.format !== undefined || (body && inject.body)) throw new KeywayError('usage', why);
}
