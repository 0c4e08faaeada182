import type { InjectConfig } from '../../config/index.ts';
import type { Injector } from '../injectors/index.ts';
import type { RequestSigner } from '../signing/signer.ts';

// How a type's credential goes on the request (GrantKind.wire), one of three: put in a header, a
// query or a body (inject); signed with, the secret never sent (sign); or presented on the upstream
// connection as a client certificate (connection). Every one has an injector: what it puts on the
// request, or takes off it (a client's own signature), and how listings describe it.

/** `Fields`: the grant's own keys as its type reads them (kind.ts's OwnFields). */
export type Wire<Fields = never> = InjectWire | SignWire<Fields> | ConnectionWire;

interface WithInjector {
  /** Its injector: the grant's own `inject` settings where the type takes them, else its default. Refuses settings it takes none of. */
  injector(inject: InjectConfig | undefined): Injector;
}

/** The credential goes on the request where the injector puts it. */
export interface InjectWire extends WithInjector {
  readonly by: 'inject';
}

/** Each request is signed with the credential (a key, a bound token's proof): the signer, from the grant's fields. */
export interface SignWire<Fields = never> extends WithInjector {
  readonly by: 'sign';
  /** Its signer; undefined: the grant names no scheme to sign by (hmac, http_signature without `sign`). */
  signer(fields: Fields): RequestSigner | undefined;
}

/**
 * Its secret is a client certificate and key (mtls), presented on the grant's upstream connections:
 * set with --client-certificate, shown as its certificate, and the grant's client_certificate in
 * the config is its secret.
 */
export interface ConnectionWire extends WithInjector {
  readonly by: 'connection';
}
