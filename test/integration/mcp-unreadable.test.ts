// keyway judges the message the MCP server runs (issue 34's high finding). The SDK's Express app
// decodes a body in the charset its Content-Type names (UTF-7 included) and inflates a
// Content-Encoding, so an agent could show keyway an allowed call and have the server run a denied
// one. Each way of doing so is sent raw through keyway to both readers of a real SDK server (the
// Express app and the transport reading the body itself), and must be refused with mcp_unreadable
// and reach neither; the same bytes sent straight to the server show that the attack is real.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';

const TOKEN = `${CANARY}-tracker-token`;
const JSON_TYPE = 'application/json';

// {"…","name":"search_issues","na+AG0-e":"delete_issue"}: UTF-7 reads the second key as "name".
const HIDDEN_NAME =
  '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"search_issues","na+AG0-e":"delete_issue","arguments":{"query":"x","id":1}}}';
// No "method" for a UTF-8 reader (a response?); UTF-7 reads "method":"tools/call".
const HIDDEN_METHOD = '{"jsonrpc":"2.0","id":9,"me+AHQ-hod":"tools/call","params":{"name":"delete_issue","arguments":{"id":1}}}';
// An argument the rule matches (team eng-*), shadowed by a hidden second "team".
const HIDDEN_ARG =
  '{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"create_comment","arguments":{"repo":"acme/api","body":"hi","team":"eng-1","te+AGE-m":"ops"}}}';
const DELETE = JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'delete_issue', arguments: { id: 1 } } });
const SEARCH = JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'search_issues', arguments: { query: 'x' } } });

describe('MCP bodies keyway would read otherwise than the server', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1' },
      config: {
        // Every refusal written in full, so the test can count them (past a budget, identical ones are summed).
        audit: { refusal_budget: 500 },
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp', '/raw/mcp'] } } },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['tracker'],
            rules: [
              { grant: 'tracker', tools: ['search_*'] },
              { grant: 'tracker', tools: ['create_comment'], args: { team: 'eng-*' } },
              { grant: 'tracker', deny: true, tools: ['delete_*'] },
            ],
          },
        },
      },
    });
    dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  async function post(path: string, headers: Record<string, string>, body: string | Buffer) {
    const res = await request(server.url('api.example.test', path), {
      dispatcher,
      method: 'POST',
      headers: { accept: 'application/json, text/event-stream', ...headers },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  }

  it('the attack is real: the Express app, reached without keyway, runs the tool UTF-7 or gzip hides', async () => {
    const direct = new Agent({ connect: { ca: TLS_FIXTURES.ca, servername: 'api.example.test' } });
    try {
      const send = async (headers: Record<string, string>, body: string | Buffer) => {
        const res = await request(`https://127.0.0.1:${server.port}/mcp`, {
          dispatcher: direct,
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json, text/event-stream', ...headers },
          body,
        });
        await res.body.dump();
        return res.statusCode;
      };
      server.calls.length = 0;
      expect(await send({ 'content-type': `${JSON_TYPE}; charset=utf-7` }, HIDDEN_NAME)).toBe(200);
      expect(await send({ 'content-type': `${JSON_TYPE}; charset=utf-7; charset=utf-8` }, HIDDEN_METHOD)).toBe(200);
      expect(await send({ 'content-type': JSON_TYPE, 'content-encoding': 'gzip' }, gzipSync(DELETE))).toBe(200);
      expect(server.calls.map((c) => c.tool)).toEqual(['delete_issue', 'delete_issue', 'delete_issue']);
    } finally {
      server.calls.length = 0;
      await direct.close();
    }
  });

  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(DELETE, 'utf16le')]);
  const cases: Array<[string, Record<string, string>, string | Buffer, RegExp]> = [
    ['a tool name hidden in UTF-7', { 'content-type': `${JSON_TYPE}; charset=utf-7` }, HIDDEN_NAME, /charset is "utf-7"/],
    ['a method hidden in UTF-7, quoted and in capitals', { 'content-type': `${JSON_TYPE}; charset="UTF-7"` }, HIDDEN_METHOD, /charset is "UTF-7"/],
    ['an argument hidden in UTF-7', { 'content-type': `${JSON_TYPE};charset=utf-7` }, HIDDEN_ARG, /charset is "utf-7"/],
    ['a charset given twice, the first UTF-7', { 'content-type': `${JSON_TYPE}; charset=utf-7; charset=utf-8` }, HIDDEN_NAME, /charset is "utf-7"/],
    ['a charset given twice, both UTF-8 readings', { 'content-type': `${JSON_TYPE}; charset=utf-8; charset=UTF-8` }, SEARCH, /charset twice/],
    ['charset=utf8 (a label some readers refuse)', { 'content-type': `${JSON_TYPE}; charset=utf8` }, SEARCH, /charset is "utf8"/],
    ['a parameter a loose reader takes for the charset', { 'content-type': `${JSON_TYPE}; xcharset=utf-7` }, HIDDEN_NAME, /takes for the charset/],
    ['a charset inside a quoted value', { 'content-type': `${JSON_TYPE}; x="a;charset=utf-7"` }, HIDDEN_NAME, /split differently/],
    ['a gzip Content-Encoding', { 'content-type': JSON_TYPE, 'content-encoding': 'gzip' }, gzipSync(DELETE), /Content-Encoding/],
    ['Content-Encoding: identity', { 'content-type': JSON_TYPE, 'content-encoding': 'identity' }, SEARCH, /Content-Encoding/],
    ['a UTF-16 body behind a byte-order mark', { 'content-type': JSON_TYPE }, utf16, /UTF-16 byte-order mark/],
    ['a UTF-8 byte-order mark', { 'content-type': JSON_TYPE }, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(SEARCH)]), /UTF-8 byte-order mark/],
    ['a type other than application/json', { 'content-type': 'text/plain' }, SEARCH, /not application\/json/],
    ['no Content-Type at all', {}, SEARCH, /no Content-Type/],
  ];

  for (const path of ['/mcp', '/raw/mcp']) {
    for (const [what, headers, body, reason] of cases) {
      it(`${path}: refuses ${what} (mcp_unreadable, a JSON-RPC error), and the server runs nothing`, async () => {
        const before = server.calls.length;
        const r = await post(path, headers, body);
        expect(r.status, r.text).toBe(400);
        expect(r.code).toBe('mcp_unreadable');
        const answer = JSON.parse(r.text) as { jsonrpc: string; id: unknown; error: { code: number; message: string; data: { code: string } } };
        expect(answer).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, data: { code: 'mcp_unreadable' } } });
        expect(answer.error.message).toMatch(reason);
        expect(server.calls.length).toBe(before);
      });
    }

    it(`${path}: a tools/list in UTF-7 is refused, not answered unfiltered`, async () => {
      const r = await post(path, { 'content-type': `${JSON_TYPE}; charset=utf-7` }, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
      expect(r.code).toBe('mcp_unreadable');
      expect(r.text).not.toContain('delete_issue');
    });

    it(`${path}: UTF-8 said any way the grammar allows is read, and the allowed call runs`, async () => {
      for (const type of [JSON_TYPE, `${JSON_TYPE}; charset=utf-8`, `Application/JSON; Charset="UTF-8"`, `${JSON_TYPE};charset="utf-8"`]) {
        const before = server.calls.length;
        const r = await post(path, { 'content-type': type }, SEARCH);
        expect(r.status, `${type}: ${r.text}`).toBe(200);
        expect(server.calls.slice(before).map((c) => c.tool)).toEqual(['search_issues']);
      }
    });
  }

  it('a message without a method is a response only with exactly one of result and error, and nothing else', async () => {
    const before = server.calls.length;
    for (const body of [
      '{"jsonrpc":"2.0","id":5}',
      '{"jsonrpc":"2.0","id":5,"result":{},"error":{"code":1,"message":"x"}}',
      '{"jsonrpc":"2.0","id":5,"result":{},"params":{"name":"delete_issue"}}',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","result":{},"params":{"name":"delete_issue"}}',
    ]) {
      const r = await post('/mcp', { 'content-type': JSON_TYPE }, body);
      expect(r.status, body).toBe(400);
      expect(r.code).toBe('bad_request');
    }
    // A well-formed response (the client answering a server's request, 2025 revision) goes on.
    const answer = await post('/mcp', { 'content-type': JSON_TYPE }, '{"jsonrpc":"2.0","id":5,"result":{}}');
    expect(answer.code).toBeUndefined();
    expect(answer.status).toBe(202);
    expect(server.calls.length).toBe(before);
  });

  it('audits each refusal as deny with code mcp_unreadable, and the chain verifies', async () => {
    const lines = proxy.auditLines().filter((l) => l['code'] === 'mcp_unreadable');
    expect(lines.length).toBe((cases.length + 1) * 2);
    for (const line of lines) expect(line).toMatchObject({ decision: 'deny', status: 400, mcp: { method: 'unreadable' } });
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
