import type { JsonRpcId } from './json-rpc.ts';

// keyway's refusals on an MCP endpoint, as JSON-RPC errors: an MCP client shows an error answer to
// the model ("this tool call was refused, because…"), where an HTTP 403 would read as the server
// being broken. keyway's own code and message are in error.data, as in its other answers.

/** A refusal by keyway's rules (JSON-RPC leaves -32000 to -32099 to implementations). */
export const REFUSED = -32001;
/** JSON-RPC's own: the body is not JSON, or not a valid request. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
/** MCP 2026-07-28's HeaderMismatch (SEP-2243): MCP-Protocol-Version, Mcp-Method or Mcp-Name disagree with the body. */
export const HEADER_MISMATCH = -32020;

export interface RpcRefusal {
  id: JsonRpcId;
  code: number;
  /** keyway's error code (policy_denied, approval_required, …) and one-line message. */
  keyway: { code: string; message: string; approval?: { id: string; state: string; expires_at: string } | undefined };
}

/** One error answer, or an array of them for a batch; JSON text. */
export function rpcErrorBody(refusals: readonly RpcRefusal[], batch: boolean): string {
  const answers = refusals.map((r) => ({
    jsonrpc: '2.0',
    id: r.id,
    error: { code: r.code, message: r.keyway.message, data: r.keyway },
  }));
  return JSON.stringify(batch ? answers : answers[0]);
}
