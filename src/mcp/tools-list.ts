import type { JsonRpcId } from './json-rpc.ts';

// tools/list answers, cut to the tools the agent may call: a model never sees a tool its rules
// refuse, so it does not plan around one. Only answers to the tools/list requests of this POST (by
// id) are touched, and in them only `result.tools`; every other field and message is left as the
// server wrote it.

export interface ToolsListFilter {
  /** The ids of the tools/list requests the answer is for. */
  readonly ids: ReadonlySet<JsonRpcId>;
  /** May the agent call this tool (with some arguments)? */
  visible(tool: string): boolean;
  /** Hears the names taken out, for the audit line. */
  onHidden(names: readonly string[]): void;
}

/** One JSON-RPC message (or a batch of them), filtered; `undefined` when nothing had to change. */
export function filterToolsList(message: unknown, filter: ToolsListFilter): unknown | undefined {
  if (Array.isArray(message)) {
    let changed = false;
    const out = message.map((m) => {
      const next = filterToolsList(m, filter);
      if (next === undefined) return m;
      changed = true;
      return next;
    });
    return changed ? out : undefined;
  }
  if (message === null || typeof message !== 'object') return undefined;
  const m = message as Record<string, unknown>;
  const id = m['id'];
  if ((typeof id !== 'string' && typeof id !== 'number') || !filter.ids.has(id)) return undefined;
  const result = m['result'];
  if (result === null || typeof result !== 'object' || !Array.isArray((result as Record<string, unknown>)['tools'])) return undefined;
  const tools = (result as Record<string, unknown>)['tools'] as unknown[];
  const hidden: string[] = [];
  const kept = tools.filter((tool) => {
    const name = tool !== null && typeof tool === 'object' ? (tool as Record<string, unknown>)['name'] : undefined;
    // A tool without a readable name cannot be judged: it is not shown.
    const show = typeof name === 'string' && filter.visible(name);
    if (!show) hidden.push(typeof name === 'string' ? name : '(unnamed)');
    return show;
  });
  if (hidden.length === 0) return undefined;
  filter.onHidden(hidden);
  return { ...m, result: { ...(result as Record<string, unknown>), tools: kept } };
}

/** A JSON body, filtered; the same bytes when nothing changed or it is not JSON. */
export function filterJsonBody(body: Buffer, filter: ToolsListFilter): Buffer {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
  const next = filterToolsList(value, filter);
  return next === undefined ? body : Buffer.from(JSON.stringify(next), 'utf8');
}
