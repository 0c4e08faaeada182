import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Grant } from '../../credentials/grant.ts';
import { oauthIssuerOf, oauthMaterialOf } from '../../credentials/types/index.ts';
import { insufficientScope, reconsentCommand } from '../../oauth/insufficient-scope.ts';
import { type BodyGuard, guards, planBody, type ReadWhole, type Redact, redactHeaders } from '../leak-guard/response-guard.ts';
import type { StagedRequest } from './request.ts';

/** The upstream's answer as the response stages see it. */
export interface UpstreamAnswer {
  readonly status: number;
  /** The request's method: a HEAD's answer has no body. */
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The secret injected on the request, to keep out of the answer; none when nothing was injected. */
  readonly redact: Redact | undefined;
  /** The grant whose credential went on the request, if any. */
  readonly grant?: Grant | undefined;
  /** Hears a hint keyway adds to the answer, for the audit line. */
  readonly hints?: { onHint(message: string, hint: string): void } | undefined;
  /**
   * The request this answers, as the head stages left it (an exchange's; none for a WebSocket's
   * handshake): a stage reads its own member there (tools/list requests on an MCP endpoint,
   * `mcp.list`; a capture grant's request, `login`).
   */
  readonly request?: StagedRequest | undefined;
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
  run(head: OutgoingHttpHeaders, answer: UpstreamAnswer): BodyGuard | ReadWhole | undefined;
}

/** The leak guard on the head: the injected secret redacted from values, a header naming it dropped. */
export const leakGuardHeaders: ResponseHeadStage = {
  name: 'leak-guard-headers',
  run(head, { redact }) {
    if (guards(redact)) redactHeaders(head, redact);
  },
};

/** The header keyway adds to an upstream's answer when it knows what would fix it. */
export const HINT_HEADER = 'x-keyway-hint';

/**
 * A consented OAuth grant's token refused for want of a scope (401/403 with WWW-Authenticate error=
 * "insufficient_scope"): the answer gains X-Keyway-Hint naming the `keyway connect` that adds the
 * scope, and the audit line the same hint. The upstream's answer is otherwise relayed as it is.
 */
export const scopeHint: ResponseHeadStage = {
  name: 'scope-hint',
  run(head, { status, grant, hints }) {
    if ((status !== 401 && status !== 403) || grant === undefined || !oauthIssuerOf(grant.type)?.consented || grant.provider === undefined) return;
    // The challenge as the leak guard left it (this stage runs after it): a `scope` that echoes the
    // token is redacted there, and a redacted value is no scope a hint prints.
    const wanted = insufficientScope(head['www-authenticate'] as string | string[] | undefined);
    if (wanted === undefined) return;
    const had = oauthMaterialOf(grant.type, grant.material)?.scopes ?? [];
    const hint = reconsentCommand(grant.provider, grant.id, wanted, had);
    head[HINT_HEADER] = hint;
    hints?.onHint(`the upstream wants scope ${wanted.join(' ')}, which grant ${grant.id}'s token does not carry`, hint);
  },
};

/** The leak guard on the body: every body scanned for the secret, decoded first when encoded. */
export const leakGuardBody: ResponseBodyStage = {
  name: 'leak-guard-body',
  run(head, { status, method, headers, redact }) {
    return guards(redact) ? planBody(status, method, headers, head, redact) : undefined;
  },
};
