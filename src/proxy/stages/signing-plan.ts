import type { RequestSigner, SignedBodyRefusal, SigningContext } from '../../credentials/signing/signer.ts';
import { holdWhole } from '../body-hold.ts';
import type { RequestBody } from '../replay-body.ts';
import { formatAuthority } from '../target.ts';
import type { HeadStage, RequestSigning, StagedRequest } from './request.ts';

/**
 * A grant that signs its requests (grant.signer) plans how, before the credential is fetched or
 * the body read: a request it cannot sign is refused here, never sent with a wrong signature. The
 * plan waits in request.signing for the body stage sign. Grants that do not sign pass at no cost.
 */
export const signingPlan: HeadStage = {
  name: 'signing-plan',
  injected: true,
  run(request) {
    const signer = request.grant!.signer;
    if (signer === undefined) return;
    const signing = new Signing(request, signer);
    signing.plan = signer.plan(signing);
    request.signing = signing;
  },
};

/**
 * The request as a signer sees it (its head, then the body's context) and the plan it made: one
 * object per signed request, reading the request's own fields when asked.
 */
class Signing implements SigningContext, RequestSigning {
  readonly #request: StagedRequest;
  readonly #signer: RequestSigner;
  plan: unknown = undefined;
  signatures: string[] | undefined = undefined;

  constructor(request: StagedRequest, signer: RequestSigner) {
    this.#request = request;
    this.#signer = signer;
  }

  sign(body: RequestBody): RequestBody | Promise<RequestBody> {
    const issued = this.#request.issued;
    if (issued === undefined) return body;
    return this.#signer.sign(this, body, this.plan, issued.credential);
  }

  get grantId(): string {
    return this.#request.grant!.id;
  }

  get headers(): StagedRequest['req']['headers'] {
    return this.#request.req.headers;
  }

  get query(): string {
    return this.#request.query;
  }

  get targetHost(): string {
    return this.#request.conn.target.host;
  }

  get audit(): StagedRequest['draft']['event'] {
    return this.#request.draft.event;
  }

  get method(): string {
    return this.#request.req.method ?? 'GET';
  }

  get outgoing(): NonNullable<StagedRequest['outgoing']> {
    return this.#request.outgoing!;
  }

  /** The client's Host, else the target's (an HTTP/2 client sends :authority). */
  get upstreamHost(): string {
    const { target } = this.#request.conn;
    const host = this.outgoing.headers['host'];
    return (Array.isArray(host) ? host[0] : host) ?? (target.port === 443 ? target.host : formatAuthority(target));
  }

  get scheme(): 'https' | 'http' {
    return this.#request.conn.scheme;
  }

  now(): Date {
    return this.#request.conn.decisions.now();
  }

  whole(body: Exclude<RequestBody, { kind: 'none' }>, cap: number, refusal: SignedBodyRefusal): Promise<Buffer> {
    return body.kind === 'kept' ? Promise.resolve(body.body) : holdWhole(this.#request, cap, refusal);
  }

  get reserve(): ((bytes: number) => boolean) | undefined {
    const holder = this.#request.holder;
    return holder === undefined ? undefined : (bytes) => holder.hold(bytes);
  }

  keepSignature(signature: string): void {
    if (this.signatures === undefined) this.signatures = [signature];
    else this.signatures.push(signature);
  }
}
