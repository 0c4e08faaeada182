import type { McpMessage } from './json-rpc.ts';

// MCP's 2026-07-28 revision (SEP-2243) puts what a request is in HTTP headers too: MCP-Protocol-Version,
// Mcp-Method (the body's method) and Mcp-Name (the tool, prompt, resource or task the body names), so
// that gateways and servers can route without reading the body. keyway judges the body; a server or
// a router in front of it that went by the headers would run what keyway never judged. So on an MCP
// endpoint the headers must say what the body says, on either revision: a disagreement, a header
// given twice, a header on a batch, or (on 2026-07-28 and later, where the spec requires them)
// a request without them is refused. Revision 2025 clients send none of Mcp-Method and Mcp-Name.

/** The first revision of the stateless protocol (no initialize, no sessions, headers that mirror the body). */
export const FIRST_MODERN_REVISION = '2026-07-28';
/** Where a 2026 request's body names its revision: params._meta[this]. */
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** A revision is a date. */
export const REVISION = /^\d{4}-\d{2}-\d{2}$/;

// Which body field Mcp-Name mirrors, per method (SEP-2243's table, and SEP-2663's tasks).
const NAME_FIELDS: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** The params field Mcp-Name mirrors for `method`, or undefined when it has none. */
export function nameField(method: string): string | undefined {
  return Object.hasOwn(NAME_FIELDS, method) ? NAME_FIELDS[method] : undefined;
}

export function isModernRevision(revision: string | undefined): boolean {
  return revision !== undefined && REVISION.test(revision) && revision >= FIRST_MODERN_REVISION;
}

/** The three headers as the request carried them, and how many times each came. */
export interface RevisionHeaders {
  version: string | undefined;
  method: string | undefined;
  name: string | undefined;
  /** Occurrences of each, from the raw headers. */
  counts: { version: number; method: number; name: number };
}

/** Why the headers disagree with the messages keyway read, or undefined when they agree. */
export function revisionHeaderProblem(headers: RevisionHeaders, messages: readonly McpMessage[], batch: boolean): string | undefined {
  for (const [key, header] of [
    ['version', 'MCP-Protocol-Version'],
    ['method', 'Mcp-Method'],
    ['name', 'Mcp-Name'],
  ] as const) {
    if (headers.counts[key] > 1) return `the ${header} header is given ${headers.counts[key]} times`;
  }
  const modern = isModernRevision(headers.version) || messages.some((m) => isModernRevision(m.revision));
  if (batch) {
    if (headers.method !== undefined || headers.name !== undefined) return 'Mcp-Method or Mcp-Name on a batch, which no header can describe';
    return modern ? `a batch on revision ${FIRST_MODERN_REVISION} or later, which has none` : undefined;
  }
  const message = messages[0]!;
  if (message.revision !== undefined && headers.version !== undefined && headers.version !== message.revision) {
    return `MCP-Protocol-Version says ${shown(headers.version)} and the body's envelope ${shown(message.revision)}`;
  }
  if (message.kind === 'response' && modern) return `a response posted on revision ${FIRST_MODERN_REVISION} or later, where servers take none`;
  if (headers.method !== undefined && headers.method !== message.method) {
    return `Mcp-Method says ${shown(headers.method)} and the body's method is ${shown(message.method ?? '(none: a response)')}`;
  }
  const field = message.method === undefined ? undefined : nameField(message.method);
  if (headers.name !== undefined) {
    if (field === undefined) return `Mcp-Name on ${shown(message.method ?? 'a response')}, which names nothing`;
    const named = decodeHeaderValue(headers.name);
    if (named === undefined) return 'Mcp-Name carries an invalid =?base64?…?= value';
    if (named !== message.mirrored) return `Mcp-Name says ${shown(named)} and the body's params.${field} is ${shown(message.mirrored ?? '(absent)')}`;
  }
  if (modern && message.kind === 'request') {
    if (headers.version === undefined) return `a request on revision ${FIRST_MODERN_REVISION} without the MCP-Protocol-Version header it requires`;
    if (headers.method === undefined) return `a request on revision ${FIRST_MODERN_REVISION} without the Mcp-Method header it requires`;
    if (field !== undefined && message.mirrored !== undefined && headers.name === undefined) {
      return `a ${message.method} on revision ${FIRST_MODERN_REVISION} without the Mcp-Name header it requires`;
    }
  }
  return undefined;
}

const SENTINEL_START = '=?base64?';
const SENTINEL_END = '?=';
// Canonical base64 only: a value that decodes two ways must not be compared one way.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A header value as the spec encodes it: as is, or `=?base64?B64-of-UTF-8?=`. Undefined when the base64 is not canonical UTF-8. */
export function decodeHeaderValue(raw: string): string | undefined {
  const value = raw.replace(/^[ \t]+|[ \t]+$/g, '');
  if (!(value.startsWith(SENTINEL_START) && value.endsWith(SENTINEL_END) && value.length >= SENTINEL_START.length + SENTINEL_END.length)) return value;
  const b64 = value.slice(SENTINEL_START.length, value.length - SENTINEL_END.length);
  if (!BASE64.test(b64)) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) return undefined;
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

function shown(text: string): string {
  return JSON.stringify(text.length <= 80 ? text : `${text.slice(0, 80)}…`);
}
