// telemetry.otlp: decisions exported by the OpenTelemetry SDK over OTLP/HTTP (protobuf) to a receiver
// that decodes each request with the official OTLP schema (the opentelemetry-proto messages as the
// OpenTelemetry project compiles them). The receiver checks the collector token keyway is given (and
// refuses a wrong one); no secret or query string reaches what is exported; a collector that is down
// costs no request.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

interface ProtoType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): Record<string, unknown>;
}
const schema = createRequire(import.meta.url)('otlp-proto-schema/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoType } }; logs: { v1: { ExportLogsServiceRequest: ProtoType } } } } };
};
const TRACES = schema.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const LOGS = schema.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

const SECRET = `${CANARY}-grant-token`;
const QUERY_SECRET = `${CANARY}-in-query`;
const COLLECTOR_TOKEN = 'collector-token-58e1';

type Attributes = Record<string, string | number | boolean | string[]>;
interface Exported {
  spans: Array<{ name: string; attributes: Attributes; status?: { code?: string } }>;
  logs: Array<{ body: string; severityText: string; attributes: Attributes }>;
  raw: Buffer[];
  refused: number;
}

function attributesOf(list: Array<{ key: string; value: Record<string, unknown> }> = []): Attributes {
  const out: Attributes = {};
  for (const { key, value } of list) {
    const array = value['arrayValue'] as { values?: Array<{ stringValue?: string }> } | undefined;
    out[key] =
      array !== undefined
        ? (array.values ?? []).map((v) => String(v.stringValue))
        : ((value['stringValue'] ?? value['intValue'] ?? value['boolValue'] ?? value['doubleValue']) as string | number | boolean);
  }
  return out;
}

async function startReceiver(): Promise<{ server: Server; url: string; got: Exported }> {
  const got: Exported = { spans: [], logs: [], raw: [], refused: 0 };
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (req.headers.authorization !== `Bearer ${COLLECTOR_TOKEN}`) {
      got.refused++;
      return void res.writeHead(401).end();
    }
    if (req.headers['content-type'] !== 'application/x-protobuf') return void res.writeHead(415).end();
    got.raw.push(body);
    const options = { longs: String, enums: String, defaults: false };
    if (req.url === '/v1/traces') {
      const message = TRACES.toObject(TRACES.decode(body), options) as {
        resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
      };
      for (const rs of message.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? [])
          for (const span of ss.spans ?? [])
            got.spans.push({
              name: span['name'] as string,
              attributes: attributesOf(span['attributes'] as never),
              status: span['status'] as { code?: string },
            });
    } else if (req.url === '/v1/logs') {
      const message = LOGS.toObject(LOGS.decode(body), options) as {
        resourceLogs?: Array<{ scopeLogs?: Array<{ logRecords?: Array<Record<string, unknown>> }> }>;
      };
      for (const rl of message.resourceLogs ?? [])
        for (const sl of rl.scopeLogs ?? [])
          for (const rec of sl.logRecords ?? [])
            got.logs.push({
              body: (rec['body'] as { stringValue: string }).stringValue,
              severityText: rec['severityText'] as string,
              attributes: attributesOf(rec['attributes'] as never),
            });
    } else return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

describe('telemetry.otlp: decisions as OpenTelemetry spans and log records', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { OTLP_AUTH: `Bearer ${COLLECTOR_TOKEN}`, BOT_KEY: 'bot-key-1' },
      config: {
        agents: { bot: { key: 'env:BOT_KEY', rules: [{ grant: 'api', methods: ['GET'] }] } },
        telemetry: { otlp: { endpoint: receiver.url, headers: { authorization: 'env:OTLP_AUTH' }, batch_delay: '200ms' } },
      },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    receiver?.server.close();
  });

  it('a wrong collector token is refused by the receiver (so the check below means something)', async () => {
    const r = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong', 'content-type': 'application/x-protobuf' },
      body: '',
    });
    expect(r.status).toBe(401);
  });

  it('exports an injected request and a refusal: span and log record each, with the line fields and no secret', async () => {
    const proxyUrl = `http://bot:bot-key-1@127.0.0.1:${proxy.port}`;
    const ok = await curl(
      ['-sS', '--cacert', proxy.caPath, '-x', proxyUrl, '-w', '\n%{http_code}', `https://api.example.test:${upstream.port}/v1/items?token=${QUERY_SECRET}`],
      cleanEnv(),
    );
    const denied = await curl(
      ['-sS', '--cacert', proxy.caPath, '-x', proxyUrl, '-X', 'DELETE', '-w', '\n%{http_code}', `https://api.example.test:${upstream.port}/v1/items/7`],
      cleanEnv(),
    );
    outputs.push(ok.stdout, ok.stderr, denied.stdout, denied.stderr);
    expect(ok.stdout).toMatch(/\n200$/);
    expect(denied.stdout).toMatch(/\n403$/);

    const inject = await waitFor(() => receiver.got.spans.find((s) => s.name === 'keyway inject'), 'the inject span', 10_000);
    expect(inject.attributes).toMatchObject({
      'keyway.decision': 'inject',
      'keyway.agent': 'bot',
      'keyway.grant': 'api',
      'http.request.method': 'GET',
      'server.address': 'api.example.test',
      'server.port': String(upstream.port),
      'url.path': '/v1/items',
      'http.response.status_code': '200',
    });
    const deny = await waitFor(() => receiver.got.spans.find((s) => s.name === 'keyway deny'), 'the deny span', 10_000);
    expect(deny.attributes).toMatchObject({ 'keyway.code': 'policy_denied', 'http.request.method': 'DELETE', 'http.response.status_code': '403' });
    const denyLog = await waitFor(() => receiver.got.logs.find((l) => l.attributes['keyway.decision'] === 'deny'), 'the deny log record', 10_000);
    expect(denyLog.severityText).toBe('WARN');
    expect(JSON.parse(denyLog.body)).toMatchObject({ agent: 'bot', grant: 'api', decision: 'deny', code: 'policy_denied', path: '/v1/items/7' });
    const injectLog = receiver.got.logs.find((l) => l.attributes['keyway.decision'] === 'inject')!;
    expect(JSON.parse(injectLog.body)).toMatchObject({ path: '/v1/items', status: 200 });
    // Nothing exported holds the grant's token, the agent's key, or the query string.
    for (const body of receiver.got.raw) {
      expect(findLeak(body, SECRET)).toBeUndefined();
      expect(findLeak(body, QUERY_SECRET)).toBeUndefined();
      expect(body.includes('bot-key-1')).toBe(false);
    }
    expect(receiver.got.refused).toBe(1); // the test's own wrong token only
  });

  it("a delegated agent's span and log record carry its chain and root agent; a root agent's its own name as root", async () => {
    const minted = await proxy.cli(['agents', 'delegate', 'bot', '--name', 'helper', '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const child = JSON.parse(minted.stdout) as { proxy_url: string };
    outputs.push(minted.stdout);
    await waitForAsync(async () => {
      const r = await curl(
        ['-sS', '--cacert', proxy.caPath, '-x', child.proxy_url, '-w', '\n%{http_code}', `https://api.example.test:${upstream.port}/v1/child`],
        cleanEnv(),
      );
      return /\n200$/.test(r.stdout) ? r : undefined;
    }, 'the child to be served');
    const span = await waitFor(
      () => receiver.got.spans.find((s) => s.attributes['url.path'] === '/v1/child' && s.name === 'keyway inject'),
      "the child's span",
      10_000,
    );
    expect(span.attributes).toMatchObject({ 'keyway.agent': 'helper', 'keyway.root_agent': 'bot', 'keyway.chain': ['bot', 'helper'] });
    const log = await waitFor(() => receiver.got.logs.find((l) => l.attributes['url.path'] === '/v1/child'), "the child's log record", 10_000);
    expect(log.attributes).toMatchObject({ 'keyway.root_agent': 'bot', 'keyway.chain': ['bot', 'helper'] });
    const root = receiver.got.spans.find((s) => s.attributes['url.path'] === '/v1/items' && s.name === 'keyway inject')!;
    expect(root.attributes['keyway.root_agent']).toBe('bot');
    expect(root.attributes['keyway.chain']).toBeUndefined();
    for (const body of receiver.got.raw) expect(body.includes(new URL(child.proxy_url).password)).toBe(false);
  });

  it('a collector that is down costs no request', async () => {
    receiver.server.closeAllConnections();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
    const proxyUrl = `http://bot:bot-key-1@127.0.0.1:${proxy.port}`;
    for (let i = 0; i < 3; i++) {
      const r = await curl(
        ['-sS', '--cacert', proxy.caPath, '-x', proxyUrl, '-w', '\n%{http_code}', `https://api.example.test:${upstream.port}/echo`],
        cleanEnv(),
      );
      expect(r.stdout).toMatch(/\n200$/);
    }
  });
});
