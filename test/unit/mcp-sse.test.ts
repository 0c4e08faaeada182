// tools/list answers cut to what the agent may call (src/mcp/tools-list.ts, sse.ts): in JSON, and
// in an event stream split at every byte; other events and fields go on as they came.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { filterSseBody, SseToolsFilter } from '../../src/mcp/sse.ts';
import { filterJsonBody, type ToolsListFilter } from '../../src/mcp/tools-list.ts';

function filter(): ToolsListFilter & { hidden: string[] } {
  const hidden: string[] = [];
  return { ids: new Set([7]), visible: (name) => !name.startsWith('delete'), onHidden: (names) => hidden.push(...names), hidden };
}

const list = (id: number) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'search' }, { name: 'delete_all' }, { nameless: true }], nextCursor: 'c2' } });

async function through(chunks: Buffer[], f: ToolsListFilter): Promise<string> {
  const out: Buffer[] = [];
  for await (const piece of Readable.from(chunks).pipe(new SseToolsFilter(f))) out.push(Buffer.from(piece));
  return Buffer.concat(out).toString('utf8');
}

describe('tools/list filtering', () => {
  it('cuts result.tools in a JSON answer (and a batch), keeps other fields, and leaves other ids alone', () => {
    const f = filter();
    const out = JSON.parse(filterJsonBody(Buffer.from(JSON.stringify([list(7), list(8)])), f).toString()) as Array<{
      result: { tools: unknown[]; nextCursor: string };
    }>;
    expect(out[0]!.result).toEqual({ tools: [{ name: 'search' }], nextCursor: 'c2' });
    expect(out[1]!.result.tools).toHaveLength(3);
    expect(f.hidden).toEqual(['delete_all', '(unnamed)']);
    const untouched = Buffer.from(JSON.stringify(list(8)));
    expect(filterJsonBody(untouched, f)).toBe(untouched);
    expect(filterJsonBody(Buffer.from('not json'), f).toString()).toBe('not json');
  });

  it('rewrites the tools/list event of a stream split at every byte, and passes the others byte for byte', async () => {
    const stream = [
      ': a comment\n\n',
      `event: message\nid: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })}\n\n`,
      `event: message\r\nid: 2\r\ndata: ${JSON.stringify(list(7))}\r\n\r\n`,
      'data: {"jsonrpc":"2.0","id":9,"result":{"text":"h\u00e9llo \u2713"}}\n\n',
    ].join('');
    const bytes = Buffer.from(stream, 'utf8');
    const expected = [
      ': a comment\n\n',
      `event: message\nid: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })}\n\n`,
      `event: message\nid: 2\ndata: ${JSON.stringify({ ...list(7), result: { tools: [{ name: 'search' }], nextCursor: 'c2' } })}\n\n`,
      'data: {"jsonrpc":"2.0","id":9,"result":{"text":"h\u00e9llo \u2713"}}\n\n',
    ].join('');
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(await through([bytes.subarray(0, cut), bytes.subarray(cut)], filter()), `cut at ${cut}`).toBe(expected);
    }
    expect(
      await through(
        [...bytes].map((b) => Buffer.from([b])),
        filter(),
      ),
    ).toBe(expected);
    expect(filterSseBody(bytes, filter()).toString('utf8')).toBe(expected);
  });

  it('ends the stream with an error rather than pass an event too long to judge', async () => {
    const huge = Buffer.from(`data: ${'x'.repeat(5 * 1024 * 1024)}`);
    await expect(through([huge], filter())).rejects.toThrow(/over/);
  });
});
