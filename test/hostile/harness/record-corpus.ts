// Records the corpus of valid traffic: real clients (curl, undici, Python requests) sent through a
// recording proxy on loopback, which answers CONNECT, terminates TLS with the test CA's leaf, and
// keeps the bytes of every request exactly as the client wrote them, then turns the address and path
// into {PREFIX}/{HOST}/{ID} placeholders. Run by hand, output committed:
//   node test/hostile/harness/record-corpus.ts > test/hostile/corpus/recorded.jsonl
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { Readable } from 'node:stream';
import { TLS_FIXTURES } from '../../helpers/fixtures.ts';
import { frameRequest } from './frames.ts';

const recorded: Array<{ leg: string; text: string }> = [];

function serveRequests(stream: Socket | TLSSocket, leg: string): void {
  let buffered = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const result = frameRequest(buffered, 0);
      if (result.kind !== 'message') return;
      recorded.push({ leg, text: buffered.subarray(0, result.frame.end).toString('latin1') });
      buffered = buffered.subarray(result.frame.end);
      stream.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    }
  });
  stream.on('error', () => stream.destroy());
}

const server = createServer((socket) => {
  socket.once('data', (first: Buffer) => {
    const text = first.toString('latin1');
    if (!text.startsWith('CONNECT ')) {
      socket.unshift(first);
      serveRequests(socket, 'absolute');
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const tls = new TLSSocket(socket, { isServer: true, cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key });
    serveRequests(tls, 'tunnel');
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
const proxy = `http://127.0.0.1:${port}`;
const HOST = 'api.example.test:8443';

// curl runs as a child while this process serves it, so never spawnSync here.
async function curlAsync(args: string[], input?: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '5', '--proxy', proxy, '--cacert', TLS_FIXTURES.caPath, ...args], {
    env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp' },
  });
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  await once(child, 'exit');
}

for (const scheme of ['http', 'https']) {
  const base = `${scheme}://${HOST}/rec`;
  await curlAsync([`${base}/get?q=1`]);
  await curlAsync(['-I', `${base}/head`]);
  await curlAsync(['-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"a":1,"b":"two"}', `${base}/post`]);
  await curlAsync(['-X', 'PUT', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `${base}/chunked`], 'chunked body from stdin\n');
  await curlAsync(['-X', 'DELETE', '-H', 'Authorization: Bearer client-sent', `${base}/items/7`]);
  await curlAsync(['-H', 'Accept-Encoding: gzip', '-H', 'Cookie: a=b', `${base}/cookies`]);
  await curlAsync(['-X', 'PATCH', '-H', 'Expect: 100-continue', '-d', 'x=1&y=2', `${base}/form`]);
  await curlAsync(['--http1.0', `${base}/ten`]);
}

const dispatcher = new ProxyAgent({ uri: proxy, requestTls: { ca: TLS_FIXTURES.ca } });
for (const scheme of ['http', 'https']) {
  const base = `${scheme}://${HOST}/rec`;
  const calls = [
    request(`${base}/undici-get`, { dispatcher }),
    request(`${base}/undici-post`, { dispatcher, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'world' }) }),
    request(`${base}/undici-stream`, { dispatcher, method: 'POST', body: Readable.from([Buffer.from('one '), Buffer.from('two')]) }),
    request(`${base}/undici-head`, { dispatcher, method: 'HEAD' }),
  ];
  for (const call of calls) await (await call).body.dump();
}
await dispatcher.close();

const python = `
import requests, sys
p = {'http': sys.argv[1], 'https': sys.argv[1]}
for s in ('http', 'https'):
    b = s + '://${HOST}/rec'
    requests.get(b + '/py-get', params={'a': 'b'}, proxies=p, verify=sys.argv[2], timeout=5)
    requests.post(b + '/py-json', json={'k': [1, 2]}, proxies=p, verify=sys.argv[2], timeout=5)
    requests.post(b + '/py-gen', data=(x for x in [b'ab', b'cd']), proxies=p, verify=sys.argv[2], timeout=5)
`;
const { spawn } = await import('node:child_process');
const py = spawn('python3', ['-c', python, proxy, TLS_FIXTURES.caPath], { env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp' }, stdio: 'inherit' });
await once(py, 'exit');
server.close();

const sourceOf = (text: string) => /user-agent: ([^\r\n/]+)/i.exec(text)?.[1] ?? 'unknown';
for (const { leg, text } of recorded) {
  const template = text
    .replaceAll(`http://${HOST}/rec/`, '{PREFIX}/fz/{ID}/')
    .replace(/^([A-Z]+) \/rec\//, '$1 {PREFIX}/fz/{ID}/')
    .replaceAll(HOST, '{HOST}');
  const name = `${leg} ${/^[A-Z]+ \S+/.exec(template)?.[0] ?? ''}`;
  process.stdout.write(`${JSON.stringify({ name, source: sourceOf(text), text: template })}\n`);
}
