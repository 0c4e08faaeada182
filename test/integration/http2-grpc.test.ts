import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { canaryLeaks, waitFor } from '../helpers/clients.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

// gRPC (HTTP/2 only, status in trailers) through keyway: @grpc/grpc-js as client, via keyway as its
// HTTPS proxy (grpc_proxy, CONNECT), to a loopback grpc-js server that checks the credential
// keyway injected. Messages are JSON, so no .proto file is needed.

type Msg = { text?: string; n?: number; authorized?: boolean };
const json = {
  serialize: (m: Msg) => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Msg,
};
const SERVICE = {
  echo: { path: '/test.Keyway/Echo', requestStream: false, responseStream: false, ...serializers() },
  count: { path: '/test.Keyway/Count', requestStream: false, responseStream: true, ...serializers() },
} satisfies grpc.ServiceDefinition;

function serializers() {
  return { requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize };
}

const authorized = (metadata: grpc.Metadata) => metadata.get('authorization')[0] === `Bearer ${CANARY}`;

describe('gRPC through keyway', () => {
  let server: grpc.Server;
  let port: number;
  let proxy: TestProxy;
  let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const seenAuthorization: string[] = [];

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(SERVICE, {
      echo: (call: grpc.ServerUnaryCall<Msg, Msg>, done: grpc.sendUnaryData<Msg>) => {
        seenAuthorization.push(String(call.metadata.get('authorization')[0]));
        if (!authorized(call.metadata)) return done({ code: grpc.status.UNAUTHENTICATED, details: 'no credential' });
        done(null, { text: `echo:${call.request.text}`, authorized: true });
      },
      count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        if (!authorized(call.metadata)) {
          call.destroy(Object.assign(new Error('no credential'), { code: grpc.status.UNAUTHENTICATED }));
          return;
        }
        for (let i = 0; i < (call.request.n ?? 0); i++) call.write({ n: i });
        call.end();
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(TLS_FIXTURES.cert), private_key: Buffer.from(TLS_FIXTURES.key) }]);
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    proxy = await startProxy({ grants: [{ id: 'grpc', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    // grpc-js reads its proxy from the environment when a channel is made: this file's worker only.
    process.env['grpc_proxy'] = proxy.url;
    const Client = grpc.makeGenericClientConstructor(SERVICE, 'Keyway');
    client = new Client(`api.example.test:${port}`, grpc.credentials.createSsl(readFileSync(proxy.caPath))) as typeof client;
    delete process.env['grpc_proxy'];
  });
  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    await proxy?.stop();
  });

  const deadline = () => ({ deadline: Date.now() + 10_000 });

  it('a unary call gets the credential injected in place of the one the client sent', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', 'Bearer client-own-token');
    const reply = await new Promise<Msg>((resolve, reject) =>
      client['echo']!({ text: 'hi' }, metadata, deadline(), (err: grpc.ServiceError | null, r: Msg) => (err ? reject(err) : resolve(r))),
    );
    expect(reply).toEqual({ text: 'echo:hi', authorized: true });
    expect(seenAuthorization.at(-1)).toBe(`Bearer ${CANARY}`);
    expect(await waitFor(() => proxy.auditLines().some((l) => l['path'] === '/test.Keyway/Echo'))).toBe(true);
    expect(proxy.auditLines().find((l) => l['path'] === '/test.Keyway/Echo')).toMatchObject({ grant: 'grpc', decision: 'inject', status: 200 });
  });

  it('a server-streaming call delivers every message and its OK status (a trailer)', async () => {
    const call = client['count']!({ n: 50 }, new grpc.Metadata(), deadline()) as grpc.ClientReadableStream<Msg>;
    const got: number[] = [];
    call.on('data', (m: Msg) => got.push(m.n ?? -1));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.OK);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(canaryLeaks(proxy)).toEqual([]);
  });
});
