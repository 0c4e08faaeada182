import { isOAuthGrant } from '../../credentials/credential-source.ts';
import { readForReplay, type RequestBody } from '../replay-body.ts';
import type { StagedRequest } from './request.ts';

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

/** A body the access stage held whole (a rule's max_body, size undeclared) is sent as it was read. */
export const heldBody: RequestBodyStage = {
  name: 'held-body',
  run(request) {
    return request.heldBody ? { kind: 'kept', body: request.heldBody } : undefined;
  },
};

/**
 * An OAuth grant's request may be sent twice (refresh and replay after a 401): its body is kept,
 * up to 1 MiB and within the agent's replay memory (replay-body.ts); past either it streams, once.
 */
export const keepForReplay: RequestBodyStage = {
  name: 'keep-for-replay',
  run(request, body) {
    if (body.kind !== 'streamed' || !request.grant || !request.issued || !isOAuthGrant(request.grant) || !request.holder) return undefined;
    return readForReplay(request.req, request.holder, body.stream);
  },
};
