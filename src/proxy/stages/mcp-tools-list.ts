import type { OutgoingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { filterSseBody, SseToolsFilter } from '../../mcp/sse.ts';
import { filterJsonBody, type ToolsListFilter } from '../../mcp/tools-list.ts';
import { contentCodings, decodingStages } from '../leak-guard/encoding.ts';
import { type BodyGuard, guards, hasBody, planBody } from '../leak-guard/response-guard.ts';
import type { ResponseBodyStage, UpstreamAnswer } from './response.ts';

/** A JSON answer to filter is held whole up to this; past it the stream fails (a tools/list answer is far smaller). */
const MAX_JSON_ANSWER = 8 * 1024 * 1024;

/**
 * The answer to a POST on an MCP endpoint that carried tools/list requests (stage mcp): JSON or a
 * server-sent event stream, with each tools/list result cut to the tools the agent may call. The
 * leak guard still runs first (this stage makes its plan and adds the filter after it); an encoded
 * answer is decoded for both. Any other answer is left to the leak guard.
 */
export const mcpToolsList: ResponseBodyStage = {
  name: 'mcp-tools-list',
  run(head, answer) {
    const filter = answer.request?.mcp?.list;
    if (filter === undefined || answer.status !== 200 || !hasBody(answer.status, answer.method, answer.headers)) return undefined;
    const type = mediaType(answer.headers['content-type']);
    if (type !== 'application/json' && type !== 'text/event-stream') return undefined;
    const guard = leakPlan(head, answer);
    const after = type === 'application/json' ? new JsonToolsFilter(filter) : new SseToolsFilter(filter);
    if (guard?.kind === 'whole') {
      const redact = guard.redact;
      return { kind: 'whole', redact: (body) => (type === 'application/json' ? filterJsonBody(redact(body), filter) : filterSseBody(redact(body), filter)) };
    }
    // Filtered, its length is known only at the end.
    delete head['content-length'];
    if (guard) return { ...guard, after: [...(guard.after ?? []), after] };
    const codings = contentCodings(answer.headers['content-encoding']);
    delete head['content-encoding'];
    return { kind: 'stream', decoders: codings.length > 0 ? decodingStages(codings) : [], scan: undefined, after: [after] };
  },
};

/** The leak guard's plan, when a secret went on the request. */
function leakPlan(head: OutgoingHttpHeaders, answer: UpstreamAnswer): BodyGuard | undefined {
  const { redact } = answer;
  return guards(redact) ? planBody(answer.status, answer.method, answer.headers, head, redact) : undefined;
}

function mediaType(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim().toLowerCase() ?? '';
}

/** A JSON answer, held whole (bounded) and filtered at its end. */
class JsonToolsFilter extends Transform {
  readonly #filter: ToolsListFilter;
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(filter: ToolsListFilter) {
    super();
    this.#filter = filter;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#size += chunk.length;
    if (this.#size > MAX_JSON_ANSWER) return done(new Error(`an MCP JSON answer over ${MAX_JSON_ANSWER} bytes`));
    this.#chunks.push(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    done(null, filterJsonBody(Buffer.concat(this.#chunks, this.#size), this.#filter));
  }
}
