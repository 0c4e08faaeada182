import { jsonShapeProblem } from './json-shape.ts';
import { nameField, PROTOCOL_VERSION_META_KEY, REVISION } from './revision-headers.ts';
import { toolNameProblem } from './tool-names.ts';

// A request body on an MCP endpoint, read as JSON-RPC 2.0: one message or a batch. Strict: a
// message keyway cannot read exactly as the server would (duplicate keys, deep nesting, a method
// with spaces or of another type, a tool name outside the MCP characters) is refused whole, not
// guessed at, and every member of a batch is returned so that each is judged.

export type JsonRpcId = string | number | null;

export interface McpMessage {
  kind: 'request' | 'notification' | 'response';
  /** A request's id (a notification has none; a response carries the id it answers). */
  id: JsonRpcId | undefined;
  /** undefined for a response. */
  method: string | undefined;
  /** tools/call: the tool and its arguments. */
  tool?: string | undefined;
  args?: Readonly<Record<string, unknown>> | undefined;
  /** The protocol revision the message's own envelope names (params._meta, 2026-07-28 and later). */
  revision?: string | undefined;
  /** The body field the Mcp-Name header mirrors for this method (revision-headers.ts), when a string. */
  mirrored?: string | undefined;
}

export type ParsedBody = { ok: true; batch: boolean; messages: McpMessage[] } | { ok: false; reason: string; ids: JsonRpcId[] };

/** More than an MCP client sends at once; a longer batch is refused. */
export const MAX_BATCH = 64;

// Method names as MCP defines them (`tools/call`, `notifications/initialized`, `$/cancelRequest`):
// no whitespace, no control or non-ASCII characters, so `tools/call ` is not a second spelling.
const METHOD = /^[A-Za-z0-9_.$/-]{1,128}$/;
// ignoreBOM: a byte-order mark stays in the text, so JSON.parse refuses it (mcp/body-reading.ts refuses it first).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const RESPONSE_MEMBERS = new Set(['jsonrpc', 'id', 'result', 'error']);

export function parseMcpBody(bytes: Buffer): ParsedBody {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return refused('the body is not UTF-8');
  }
  const shape = jsonShapeProblem(text);
  if (shape) return refused(`the body is refused: ${shape}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refused('the body is not JSON');
  }
  const batch = Array.isArray(value);
  const items = batch ? (value as unknown[]) : [value];
  const ids = items.map(idOf).filter((id): id is JsonRpcId => id !== undefined);
  if (batch && items.length === 0) return refused('an empty batch', ids);
  if (items.length > MAX_BATCH) return refused(`a batch of ${items.length} messages (at most ${MAX_BATCH})`, ids);
  const messages: McpMessage[] = [];
  for (const [index, item] of items.entries()) {
    const message = readMessage(item);
    if (typeof message === 'string') return refused(batch ? `message ${index + 1} of the batch: ${message}` : message, ids);
    messages.push(message);
  }
  return { ok: true, batch, messages };
}

function readMessage(item: unknown): McpMessage | string {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return 'a message is not a JSON object';
  const m = item as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0') return 'jsonrpc is not "2.0"';
  const id = m['id'];
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') return 'its id is neither a string nor a number';
  const answers = ('result' in m ? 1 : 0) + ('error' in m ? 1 : 0);
  if (!('method' in m)) {
    // The client answering a server's request (sampling, elicitation, roots) on the 2025 revision:
    // a response and nothing else, so no server reads it as a request keyway took for an answer.
    if (answers !== 1) return 'a message without a method must be a response, with exactly one of result and error';
    if (id === undefined) return 'a response without an id';
    const extra = Object.keys(m).find((key) => !RESPONSE_MEMBERS.has(key));
    if (extra !== undefined) return `a response with a member ${JSON.stringify(extra.slice(0, 64))}`;
    return { kind: 'response', id, method: undefined };
  }
  if (answers > 0) return 'a message with both a method and a result or error';
  const method = m['method'];
  if (typeof method !== 'string' || !METHOD.test(method)) {
    return `its method ${JSON.stringify(String(method).slice(0, 64))} is not a method name (letters, digits and _ . $ / - only)`;
  }
  const params = m['params'];
  const message: McpMessage = { kind: id === undefined ? 'notification' : 'request', id, method };
  if (isObject(params)) {
    const envelope = envelopeRevision(params);
    if (envelope === null) return `its params._meta["${PROTOCOL_VERSION_META_KEY}"] is not a protocol revision`;
    if (envelope !== undefined) message.revision = envelope;
    const field = nameField(method);
    const mirrored = field === undefined ? undefined : params[field];
    if (typeof mirrored === 'string') message.mirrored = mirrored;
  }
  if (method !== 'tools/call') return message;
  if (!isObject(params)) return 'tools/call without params';
  const name = params['name'];
  if (typeof name !== 'string') return 'tools/call without a tool name';
  const problem = toolNameProblem(name);
  if (problem) return problem;
  const args = params['arguments'];
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) return "tools/call's arguments are not an object";
  return { ...message, tool: name, args: (args as Record<string, unknown> | undefined) ?? {} };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The revision params._meta claims; undefined without a claim, null for a claim that is not a revision (refused). */
function envelopeRevision(params: Record<string, unknown>): string | undefined | null {
  const meta = params['_meta'];
  if (!isObject(meta) || !Object.hasOwn(meta, PROTOCOL_VERSION_META_KEY)) return undefined;
  const claim = meta[PROTOCOL_VERSION_META_KEY];
  return typeof claim === 'string' && REVISION.test(claim) ? claim : null;
}

function idOf(item: unknown): JsonRpcId | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const id = (item as Record<string, unknown>)['id'];
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}

function refused(reason: string, ids: JsonRpcId[] = []): ParsedBody {
  return { ok: false, reason, ids };
}
