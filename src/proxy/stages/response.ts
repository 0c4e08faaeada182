import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { type BodyGuard, planBody, type Redact, redactHeaders } from '../leak-guard/response-guard.ts';

/** The upstream's answer as the response stages see it. */
export interface UpstreamAnswer {
  readonly status: number;
  /** The request's method: a HEAD's answer has no body. */
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The secret injected on the request, to keep out of the answer; none when nothing was injected. */
  readonly redact: Redact | undefined;
}

/** Rewrites the head the client gets (already a copy without hop-by-hop fields). */
export interface ResponseHeadStage {
  readonly name: string;
  run(head: OutgoingHttpHeaders, answer: UpstreamAnswer): void;
}

/**
 * Decides how the body reaches the client: read whole then rewritten, or streamed through
 * transforms; undefined leaves it to the next stage (none: relayed as it comes). May adjust the
 * head's framing fields (length, encoding) to match, and throws the ProxyError to answer with
 * when it cannot handle the body.
 */
export interface ResponseBodyStage {
  readonly name: string;
  run(head: OutgoingHttpHeaders, answer: UpstreamAnswer): BodyGuard | undefined;
}

/** The leak guard on the head: the injected secret redacted from values, a header naming it dropped. */
export const leakGuardHeaders: ResponseHeadStage = {
  name: 'leak-guard-headers',
  run(head, { redact }) {
    if (redact && redact.needles.length > 0) redactHeaders(head, redact);
  },
};

/** The leak guard on the body: every body scanned for the secret, decoded first when encoded. */
export const leakGuardBody: ResponseBodyStage = {
  name: 'leak-guard-body',
  run(head, { status, method, headers, redact }) {
    return redact && redact.needles.length > 0 ? planBody(status, method, headers, head, redact) : undefined;
  },
};
