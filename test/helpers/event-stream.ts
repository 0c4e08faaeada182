// A client for the admin API's Server-Sent Events answers: reads the stream as it arrives, parses
// events and comments, and waits (bounded) for the ones a test expects.

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface SseClient {
  status: number;
  headers: Headers;
  /** Every event so far, in order. */
  events: SseEvent[];
  /** Every comment line so far (without the leading colon), and `retry:` values. */
  comments: string[];
  retry: number | undefined;
  /** Resolves once the server has ended the stream (or it broke). */
  ended: Promise<void>;
  /** The first event (from `from` on) that `match` accepts, within `timeoutMs`. */
  next(match: (e: SseEvent) => boolean, timeoutMs?: number, from?: number): Promise<SseEvent>;
  close(): void;
  /** The JSON body of a refused stream (status other than 200). */
  errorBody: unknown;
}

export async function openEventStream(url: string, headers: Record<string, string>): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const client: SseClient = {
    status: res.status,
    headers: res.headers,
    events: [],
    comments: [],
    retry: undefined,
    ended: Promise.resolve(),
    errorBody: undefined,
    async next(match, timeoutMs = 5_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = client.events.slice(from).find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; got ${client.events.length} events`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => controller.abort(),
  };
  if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    client.errorBody = await res.json().catch(() => undefined);
    return client;
  }
  const body = res.body;
  if (body === null) throw new Error('an event stream without a body');
  client.ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let cut = buffer.indexOf('\n\n'); cut !== -1; cut = buffer.indexOf('\n\n')) {
          parseBlock(buffer.slice(0, cut), client);
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch {
      // aborted by close(), or cut by the server: either way the stream is over
    }
  })();
  return client;
}

function parseBlock(block: string, client: SseClient): void {
  let event = 'message';
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
    else if (line.startsWith('retry: ')) client.retry = Number(line.slice(7));
    else if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('id: ')) id = line.slice(4);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length > 0) client.events.push({ event, id, data: data.join('\n') });
}
