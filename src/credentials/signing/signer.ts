import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError } from '../../errors/index.ts';
import type { Credential } from '../material.ts';

// What the proxy asks of a grant that signs its requests (aws_sigv4, hmac), in one shape: the
// proxy knows that a grant signs, never how. Two steps, because a plan that refuses must do so
// before the credential is fetched or a byte of the body read, and a signature over the body can
// only be made once the body is known.

/**
 * The request body as the proxy's body stages hand it on (proxy/replay-body.ts's RequestBody, by
 * shape: credentials sits below the proxy and cannot name its type).
 */
export type SigningBody = { kind: 'none' } | { kind: 'kept'; body: Buffer } | { kind: 'streamed'; stream: Readable; why: 'size' | 'budget' };

/** The audit line's fields a signer fills (audit/event.ts's AuditEvent has them). */
export interface SigningAudit {
  signed?: string | undefined;
  region?: string | undefined;
  service?: string | undefined;
  role?: string | undefined;
}

/** The request's head, before its body is read or its credential fetched. */
export interface SigningHead {
  readonly grantId: string;
  /** The client's headers as it sent them (its own signature, how it framed the body). */
  readonly headers: IncomingHttpHeaders;
  /** The normalised query: `''` or `?…`. */
  readonly query: string;
  /** The host the request goes to (the connection's target). */
  readonly targetHost: string;
  readonly audit: SigningAudit;
}

/** What to refuse with when a body must be held whole and cannot be. */
export interface SignedBodyRefusal {
  /** Past the bound (bytes seen, or declared). */
  over(seen: number): ProxyError;
  /** The agent's memory for held bodies is spent. */
  full(): ProxyError;
}

/** The request once its body is known: what a signature covers, and where it goes. */
export interface SigningContext extends SigningHead {
  readonly method: string;
  /** The request as it goes upstream, changed in place (headers set, the path's query signed). */
  readonly outgoing: { headers: Record<string, string | string[]>; path: string };
  /** The Host the upstream reads, which a signature covers. */
  readonly upstreamHost: string;
  /** The scheme the request goes upstream with. */
  readonly scheme: 'https' | 'http';
  now(): Date;
  /**
   * The body's bytes, whole: as kept, or held now up to `cap` (the proxy's one body hold, which keeps
   * them on the request so the same bytes go upstream), refused with `refusal` past it.
   */
  whole(body: Exclude<SigningBody, { kind: 'none' }>, cap: number, refusal: SignedBodyRefusal): Promise<Buffer>;
  /** Reserves bytes from the agent's memory for held bodies (a chunk held to sign it); false: spent. Undefined: no budget to ask. */
  readonly reserve: ((bytes: number) => boolean) | undefined;
  /** A signature that works on its own for a while (a presigned URL's): the leak guard looks for it in the answer. */
  keepSignature(signature: string): void;
}

/**
 * How a grant's requests are signed. `plan` runs before the body is read (a shape it cannot sign
 * is refused there with a ProxyError) and sets the audit fields it knows then; `sign` runs once the
 * body is known and returns the body to send (held whole when the signature covers it, or framed
 * anew). A signer is compiled once per grant and holds no request's state: the plan carries it.
 */
export interface RequestSigner<Plan = unknown> {
  plan(head: SigningHead): Plan;
  sign(ctx: SigningContext, body: SigningBody, plan: Plan, credential: Credential): SigningBody | Promise<SigningBody>;
}

/** The refusal of a body a signature must cover and keyway cannot hold: 413 body_too_large, never a signature over bytes keyway did not hash. */
export function signedBodyRefusal(grantId: string, max: number): SignedBodyRefusal {
  const hint = 'send it in parts (a multipart upload), as UNSIGNED-PAYLOAD, or raise max_signed_body on the grant';
  return {
    over: () =>
      new ProxyError('body_too_large', `grant "${grantId}" must hold a body to sign it, and this one is over max_signed_body (${max} bytes)`, {
        grant: grantId,
        hint,
      }),
    full: () =>
      new ProxyError('body_too_large', `grant "${grantId}" must hold this body to sign it, and the agent's memory for held bodies is spent`, {
        grant: grantId,
        hint,
      }),
  };
}

/** The largest body a grant holds whole to sign it, unless its max_signed_body says otherwise. */
export const DEFAULT_MAX_SIGNED_BODY = 16 * 1024 * 1024;
