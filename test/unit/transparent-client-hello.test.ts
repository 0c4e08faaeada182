// The server name read from a real ClientHello (Node's TLS client), before any TLS is done.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { readClientHello } from '../../src/proxy/transparent/client-hello.ts';
import { completeHead, hostOfHead } from '../../src/proxy/transparent/http-host.ts';

/** The first flight of a TLS client asking for `servername` (none when undefined), as a server receives it. */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (socket: Socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          socket.destroy();
          resolve(all);
        }
      });
    }),
  );
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...(servername ? { servername } : {}) });
  client.on('error', () => undefined);
  const bytes = await got;
  client.destroy();
  server.close();
  return bytes;
}

describe('readClientHello', () => {
  it('reads the server name, in lower case, and waits while the record is incomplete', async () => {
    const hello = await clientHello('API.Example.test');
    expect(readClientHello(hello)).toEqual({ kind: 'name', host: 'api.example.test' });
    expect(readClientHello(hello.subarray(0, 3))).toEqual({ kind: 'more' });
    expect(readClientHello(hello.subarray(0, hello.length - 1))).toEqual({ kind: 'more' });
  });

  it('says when there is no name (a client dialling an IP sends none), and when it is not TLS', async () => {
    expect(readClientHello(await clientHello(undefined))).toEqual({ kind: 'no-name' });
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'not-tls' });
    // A record that claims more than TLS allows, and garbage inside a handshake record.
    expect(readClientHello(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]))).toMatchObject({ kind: 'not-tls' });
    expect(readClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x03, 0x01, 0x00, 0x00]))).toMatchObject({ kind: 'not-tls' });
  });

  it('refuses a server name that is an IP address or not a DNS name', async () => {
    const name = 'abcdefg.xyz'; // 11 characters, as many as 10.20.30.40
    const hello = await clientHello(name);
    const swap = (other: string) => {
      const copy = Buffer.from(hello);
      copy.write(other, hello.indexOf(name), 'latin1');
      return copy;
    };
    expect(readClientHello(swap('10.20.30.40'))).toMatchObject({ kind: 'not-tls', reason: expect.stringContaining('IP address') });
    expect(readClientHello(swap('bad name.xy'))).toMatchObject({ kind: 'not-tls', reason: expect.stringContaining('not a DNS name') });
    expect(readClientHello(swap('abcdefg.xyz'))).toEqual({ kind: 'name', host: 'abcdefg.xyz' });
  });
});

describe('the Host of a redirected plain request', () => {
  it('waits for the whole head, then reads its one Host (port 80 unless named)', () => {
    expect(completeHead(Buffer.from('GET / HTTP/1.1\r\nHost: a.example.test\r\n'))).toBeUndefined();
    const head = completeHead(Buffer.from('GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\nbody'))!;
    expect(hostOfHead(head)).toEqual({ host: 'a.example.test', port: 80 });
    expect(hostOfHead('GET / HTTP/1.1\r\nhost:B.example.test:8080')).toEqual({ host: 'b.example.test', port: 8080 });
  });

  it('refuses no Host (no_destination), two of them, and a Host that is not one', () => {
    expect(() => hostOfHead('GET / HTTP/1.0')).toThrow(/without a Host/);
    expect(() => hostOfHead('GET / HTTP/1.1\r\nHost: a.example.test\r\nHost: b.example.test')).toThrow(/more than one Host/);
    expect(() => hostOfHead('GET / HTTP/1.1\r\nHost: a b')).toThrow(/not host:port/);
  });
});
