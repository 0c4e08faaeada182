import { byteOrderMark, utf8Reading } from '../net/media-type.ts';

// An MCP POST is judged on the message keyway reads; the server must decode the very same one. The
// MCP SDK's Express app decodes a body in whatever charset its Content-Type names (UTF-7 included),
// inflates a Content-Encoding, and strips a byte-order mark, each of which would let an agent show
// keyway one message and run another. So a body is read only as plain UTF-8 JSON, the way every MCP
// client sends it: `application/json` (optionally `charset=utf-8`, once), no Content-Encoding, no
// byte-order mark, one Content-Type. Anything else is refused whole, never read as if it were UTF-8.

export interface McpPostHead {
  'content-type'?: string | undefined;
  'content-encoding'?: string | undefined;
}

/** Why keyway will not read this POST's body as the server would, or undefined when it reads the same. */
export function mcpBodyProblem(headers: McpPostHead, contentTypes: number, body: Uint8Array): string | undefined {
  if (contentTypes > 1) return 'the request has more than one Content-Type';
  const encoding = headers['content-encoding'];
  if (encoding !== undefined) return `it has a Content-Encoding (${JSON.stringify(encoding.slice(0, 40))}): MCP messages are sent as they are`;
  const reading = utf8Reading(headers['content-type']);
  if (!reading.ok) return reading.reason;
  const { type, params } = reading.mediaType;
  if (type !== 'application/json') return `its Content-Type is ${type}, not application/json`;
  const other = params.find(([name]) => name !== 'charset');
  if (other) return `its Content-Type has a parameter ${JSON.stringify(other[0])} (only charset=utf-8 is read)`;
  const mark = byteOrderMark(body);
  if (mark) return `the body starts with a ${mark} byte-order mark`;
  return undefined;
}
