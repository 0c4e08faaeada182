import { Readable } from 'node:stream';
import { replaysAfter401 } from '../../credentials/credential-source.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { ByteQuota, StagedRequest } from './request.ts';

/**
 * A stage on the request body: given the body as it stands (none, kept whole in memory, or a
 * stream), returns it as it goes on, or undefined to leave it. A stage that needs the whole body
 * (a replay copy, a hash for a signature) reads it into memory up to a bound and says what it did
 * past the bound; one that rewrites bytes as they pass returns a stream read from the one it got.
 */
export interface RequestBodyStage {
  readonly name: string;
  run(request: StagedRequest, body: RequestBody): RequestBody | Promise<RequestBody> | undefined;
}

/** A body held whole by a head stage (body-hold.ts: a rule's max_body, an MCP message, an approval) is sent as it was read. */
export const heldBody: RequestBodyStage = {
  name: 'held-body',
  run(request) {
    return request.heldBody ? { kind: 'kept', body: request.heldBody } : undefined;
  },
};

/**
 * An OAuth grant's request may be sent twice (refresh and replay after a 401), and so may one whose
 * secret a command prints (the command runs again; replaysAfter401), or one whose type reads the
 * answers (grant.retry: a challenge answered with the same secret): its body is kept, up to 1 MiB
 * and within the agent's replay memory (replay-body.ts); past either it streams, once.
 */
export const keepForReplay: RequestBodyStage = {
  name: 'keep-for-replay',
  run(request, body) {
    const grant = request.grant;
    const mayReplay = grant !== undefined && (grant.retry !== undefined || replaysAfter401(grant));
    if (body.kind !== 'streamed' || !mayReplay || !request.issued || !request.holder) return undefined;
    return readForReplay(request.req, request.holder, body.stream);
  },
};

/**
 * A signing grant's request is signed here, once its body is known, as stage signing-plan planned
 * it (the grant's signer: credentials/signing): after body-swap and the replay copy, so the
 * signature covers the bytes sent. Other requests pass untouched.
 */
export const sign: RequestBodyStage = {
  name: 'sign',
  run(request, body) {
    return request.signing?.sign(body);
  },
};

/**
 * A request under a bytes quota (stage limits set request.byteQuota) counts its body as it goes
 * upstream: a kept body at once, a streamed one chunk by chunk. Last of the body stages, so it
 * counts what is sent (a signature's re-framing included); a replay sends the same body again and
 * is not counted twice. Other requests pass untouched, at no cost.
 */
export const countBody: RequestBodyStage = {
  name: 'count-body',
  run(request, body) {
    const quota = request.byteQuota;
    if (quota === undefined || body.kind === 'none') return undefined;
    if (body.kind === 'kept') {
      quota.sent += body.body.length;
      return undefined;
    }
    return { ...body, stream: Readable.from(counted(quota, body.stream), { objectMode: false }) };
  },
};

async function* counted(quota: ByteQuota, source: Extract<RequestBody, { kind: 'streamed' }>['stream']): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    quota.sent += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}
