// The 2026-07-28 revision's headers against the body keyway read (src/mcp/revision-headers.ts).
import { describe, expect, it } from 'vitest';
import { parseMcpBody } from '../../src/mcp/json-rpc.ts';
import { decodeHeaderValue, revisionHeaderProblem, type RevisionHeaders } from '../../src/mcp/revision-headers.ts';

const META = { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } };
const read = (value: unknown) => {
  const parsed = parseMcpBody(Buffer.from(JSON.stringify(value)));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed;
};
const headers = (h: Partial<Omit<RevisionHeaders, 'counts'>>, counts?: Partial<RevisionHeaders['counts']>): RevisionHeaders => ({
  version: h.version,
  method: h.method,
  name: h.name,
  counts: { version: h.version === undefined ? 0 : 1, method: h.method === undefined ? 0 : 1, name: h.name === undefined ? 0 : 1, ...counts },
});
const problem = (h: RevisionHeaders, value: unknown) => {
  const parsed = read(value);
  return revisionHeaderProblem(h, parsed.messages, parsed.batch);
};

describe('the revision headers', () => {
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: {}, ...META } };
  const full = { version: '2026-07-28', method: 'tools/call', name: 'search' };

  it('agree when they mirror the body; a 2025 request may carry none', () => {
    expect(problem(headers(full), call)).toBeUndefined();
    expect(problem(headers({ ...full, name: `=?base64?${Buffer.from('search').toString('base64')}?=` }), call)).toBeUndefined();
    expect(problem(headers({}), { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete' } })).toBeUndefined();
    // A 2026 notification needs no headers (the spec exempts notifications).
    expect(problem(headers({}), { jsonrpc: '2.0', method: 'notifications/cancelled', params: { ...META } })).toBeUndefined();
    // resources/read mirrors the uri; a non-ASCII one comes base64.
    const uri = 'file:///é x';
    const read = { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri, ...META } };
    expect(
      problem(headers({ version: '2026-07-28', method: 'resources/read', name: `=?base64?${Buffer.from(uri).toString('base64')}?=` }), read),
    ).toBeUndefined();
  });

  it('refuse a header given twice, whatever it says', () => {
    expect(problem(headers(full, { name: 2 }), call)).toContain('Mcp-Name header is given 2 times');
    expect(problem(headers(full, { method: 3 }), call)).toContain('Mcp-Method header is given 3 times');
    expect(problem(headers(full, { version: 2 }), call)).toContain('MCP-Protocol-Version header is given 2 times');
  });

  it('refuse a disagreement, a missing required header, and what the 2026 revision has no place for', () => {
    expect(problem(headers({ ...full, name: 'delete' }), call)).toContain('Mcp-Name says "delete"');
    expect(problem(headers({ ...full, method: 'tools/list' }), call)).toContain('Mcp-Method says "tools/list"');
    expect(problem(headers({ ...full, version: '2025-11-25' }), call)).toContain('envelope "2026-07-28"');
    expect(problem(headers({ version: '2026-07-28', name: 'search' }), call)).toContain('without the Mcp-Method header');
    expect(problem(headers({ method: 'tools/call', name: 'search' }), call)).toContain('without the MCP-Protocol-Version header');
    expect(problem(headers({ version: '2026-07-28', method: 'tools/call' }), call)).toContain('without the Mcp-Name header');
    expect(problem(headers({ version: '2026-07-28' }), [call])).toContain('a batch on revision');
    expect(problem(headers({ version: '2026-07-28' }), { jsonrpc: '2.0', id: 1, result: {} })).toContain('a response posted');
    expect(problem(headers({ method: 'ping', name: 'x' }), { jsonrpc: '2.0', id: 1, method: 'ping' })).toContain('names nothing');
    // A 2025 request that carries the header must agree with it too.
    expect(problem(headers({ method: 'ping' }), { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete' } })).toContain(
      'Mcp-Method says "ping"',
    );
  });

  it('refuse an envelope claim that is not a revision', () => {
    expect(
      parseMcpBody(Buffer.from(JSON.stringify({ ...call, params: { name: 'x', _meta: { 'io.modelcontextprotocol/protocolVersion': 2026 } } }))),
    ).toMatchObject({
      ok: false,
      reason: expect.stringContaining('is not a protocol revision'),
    });
  });
});

describe('decodeHeaderValue', () => {
  it('reads plain values and canonical =?base64?…?= UTF-8, and nothing else', () => {
    expect(decodeHeaderValue('search')).toBe('search');
    expect(decodeHeaderValue(' search\t')).toBe('search');
    expect(decodeHeaderValue(`=?base64?${Buffer.from('é').toString('base64')}?=`)).toBe('é');
    expect(decodeHeaderValue('=?base64?c2VhcmNo?=')).toBe('search');
    expect(decodeHeaderValue('=?base64?c2VhcmNoX2lzc3Vlcw?=')).toBeUndefined(); // unpadded
    expect(decodeHeaderValue('=?base64?c2VhcmNoX2lzc3Vlcx==?=')).toBeUndefined(); // non-zero trailing bits
    expect(decodeHeaderValue('=?base64?/w==?=')).toBeUndefined(); // not UTF-8
  });
});
