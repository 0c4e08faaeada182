// Reading MCP request bodies strictly (src/mcp/): what is refused and why, and that every member
// of a batch comes back to be judged.
import { describe, expect, it } from 'vitest';
import { argsSha256, compileArgs } from '../../src/mcp/args.ts';
import { jsonShapeProblem } from '../../src/mcp/json-shape.ts';
import { MAX_BATCH, parseMcpBody } from '../../src/mcp/json-rpc.ts';
import { compileNameGlob, toolNameProblem } from '../../src/mcp/tool-names.ts';

const body = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
const call = (id: number, name: string, args?: unknown) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, ...(args === undefined ? {} : { arguments: args }) },
});

describe('MCP request bodies', () => {
  it('reads a single message, a batch, notifications and responses', () => {
    expect(parseMcpBody(body(call(1, 'search', { q: 'x' })))).toEqual({
      ok: true,
      batch: false,
      messages: [{ kind: 'request', id: 1, method: 'tools/call', mirrored: 'search', tool: 'search', args: { q: 'x' } }],
    });
    const batch = parseMcpBody(body([{ jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', id: 'a', result: {} }, call(2, 'get')]));
    expect(batch).toMatchObject({ ok: true, batch: true });
    expect(batch.ok && batch.messages.map((m) => m.kind)).toEqual(['notification', 'response', 'request']);
    expect(batch.ok && batch.messages[2]!.args).toEqual({});
  });

  it('takes a message without a method for a response only with an id, exactly one of result and error, and nothing more', () => {
    const reason = (value: unknown) => {
      const r = parseMcpBody(body(value));
      return r.ok ? undefined : r.reason;
    };
    expect(reason({ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'no' } })).toBeUndefined();
    expect(reason({ jsonrpc: '2.0', id: 1 })).toContain('exactly one of result and error');
    expect(reason({ jsonrpc: '2.0', id: 1, result: {}, error: {} })).toContain('exactly one of result and error');
    expect(reason({ jsonrpc: '2.0', result: {} })).toContain('without an id');
    expect(reason({ jsonrpc: '2.0', id: 1, result: {}, params: { name: 'delete' } })).toContain('a member "params"');
    expect(reason({ ...call(1, 'delete'), result: {} })).toContain('both a method and a result');
    // A byte-order mark is not stripped: the body is refused, as the HTTP stage refuses it first.
    expect(parseMcpBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body(call(1, 'a'))]))).toMatchObject({ ok: false });
  });

  it('refuses duplicate keys anywhere, deep nesting in one pass, and malformed JSON-RPC, with the ids it could read', () => {
    const dup = parseMcpBody(body('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}'));
    expect(dup).toMatchObject({ ok: false, reason: expect.stringContaining('"name" appears twice') });
    expect(parseMcpBody(body('{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}'))).toMatchObject({ ok: false });
    // Same key in sibling objects is fine.
    expect(parseMcpBody(body([call(1, 'a', { x: 1 }), call(2, 'b', { x: 2 })]))).toMatchObject({ ok: true });
    const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}}}`;
    expect(parseMcpBody(body(deep))).toMatchObject({ ok: false, reason: expect.stringContaining('nested deeper than 64') });
    expect(jsonShapeProblem('{"a":"\\"{{{{"}')).toBeUndefined(); // brackets inside strings do not count
    // A key spelt with an escape is the key it decodes to, against a plain spelling either way round.
    expect(jsonShapeProblem('{"name":"a","na\\u006de":"b"}')).toContain('"name" appears twice');
    expect(jsonShapeProblem('{"na\\u006de":"a","name":"b"}')).toContain('"name" appears twice');
    expect(jsonShapeProblem('{"a\\"b":1,"a\\"b":2}')).toContain('appears twice');
    expect(jsonShapeProblem('{"a\\"b":1,"a\\\\b":2}')).toBeUndefined();
    expect(parseMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'tools/call ' }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('not a method name'),
    });
    expect(parseMcpBody(body({ jsonrpc: '2.0', id: 1, method: 7 }))).toMatchObject({ ok: false });
    expect(parseMcpBody(body({ jsonrpc: '1.0', id: 1, method: 'ping' }))).toMatchObject({ ok: false });
    expect(parseMcpBody(body({ jsonrpc: '2.0', id: {}, method: 'ping' }))).toMatchObject({ ok: false });
    expect(parseMcpBody(body(call(1, 'a', [1, 2])))).toMatchObject({ ok: false, reason: expect.stringContaining('arguments are not an object') });
    expect(parseMcpBody(body([]))).toMatchObject({ ok: false, reason: 'an empty batch' });
    expect(parseMcpBody(body(Array.from({ length: MAX_BATCH + 1 }, (_, i) => call(i, 'a'))))).toMatchObject({
      ok: false,
      ids: expect.arrayContaining([0, MAX_BATCH]),
    });
    expect(parseMcpBody(Buffer.from([0xff, 0xfe]))).toMatchObject({ ok: false, reason: 'the body is not UTF-8' });
    const batch = parseMcpBody(body([call(1, 'ok'), call(2, 's\u0435arch')]));
    expect(batch).toMatchObject({ ok: false, ids: [1, 2], reason: expect.stringContaining('message 2 of the batch') });
  });

  it('takes tool names in the MCP characters only, and matches allow globs as written, deny globs in any case', () => {
    for (const good of ['search_issues', 'a.b-c', 'x'.repeat(128)]) expect(toolNameProblem(good)).toBeUndefined();
    for (const bad of ['', 'x'.repeat(129), 'search issues', 's\u0435arch', 'tool\u200b', 'a/b']) expect(toolNameProblem(bad)).toBeDefined();
    const glob = compileNameGlob('delete_*');
    expect(glob.matches('delete_issue')).toBe(true);
    expect(glob.matches('Delete_Issue')).toBe(false);
    expect(glob.matchesAnyCase('Delete_Issue')).toBe(true);
    expect(compileNameGlob('a.b').matches('aXb')).toBe(false); // . is literal
  });

  it('matches arguments by glob for strings and by equality otherwise; objects never match a glob', () => {
    const args = compileArgs({ repo: 'acme/*', draft: false, limit: 10 });
    expect(args.mismatch({ repo: 'acme/api', draft: false, limit: 10, extra: 1 })).toBeUndefined();
    expect(args.mismatch({ repo: 'evil/api', draft: false, limit: 10 })).toContain('repo');
    expect(args.mismatch({ repo: 'acme/api', draft: 'false', limit: 10 })).toContain('draft');
    expect(args.mismatch({ draft: false, limit: 10 })).toBe('argument repo is missing');
    expect(args.mismatch({ repo: { toString: 'acme/x' }, draft: false, limit: 10 })).toContain('repo');
    expect(args.mismatch({ repo: ['acme/x'], draft: false, limit: 10 })).toContain('repo');
  });

  it('hashes arguments canonically: key order does not change the hash, values do', () => {
    expect(argsSha256({ a: 1, b: { c: 2, d: [1, 2] } })).toBe(argsSha256({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(argsSha256({ a: 1 })).not.toBe(argsSha256({ a: 2 }));
  });
});
