// The close codes keyway sends when it ends a WebSocket itself (agent-close.ts writes the frame):
// the relay's own (a revocation) and a socket tap's (a refused message: stages/hooks.ts).

/** RFC 6455 7.4.1: the endpoint is closing because a message (or the socket itself) violates its policy. */
export const POLICY_VIOLATION = 1008;
/** RFC 6455 7.4.1: the endpoint met a condition that keeps it from serving the message. */
export const INTERNAL_ERROR = 1011;
