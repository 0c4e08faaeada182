import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { openConnect } from '../helpers/raw-http.ts';

// Found in review (issue 21): the host-wide listener registry is writable by every local user, and a
// name on a port some entry announces is refused before its lookup (DNS rebinding). One file another
// user plants, naming a live pid (pid 1: EPERM counts as alive) and port 443, made every keyway on
// the host refuse every HTTPS name not in proxy.hosts. Now only entries of root or keyway's own user
// feed that early refusal; another user's still refuse a local address after the lookup.

let proxy: TestProxy | undefined;
afterEach(async () => {
  await proxy?.stop();
  proxy = undefined;
});

/** A CONNECT on a new connection; keyway's status line (bounded in time). */
function connectStatus(port: number, authority: string, auth: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 5 s')), 5_000);
    let text = '';
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.slice(0, text.indexOf('\r\n')));
      }
    });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: Basic ${Buffer.from(auth).toString('base64')}\r\n\r\n`);
  });
}

describe('listener registry: an entry planted by another local user', () => {
  it('does not make keyway refuse every name on port 443; one of its own user does, as before', async () => {
    proxy = await startProxy({
      env: { A_KEY: 'a-agent-key' },
      // No loopback in allow_networks: a name that resolves to 127.0.0.9 is refused by the egress
      // check after its lookup, never dialled; the early refusal, when it fires, names the port.
      config: { proxy: { allow_networks: [] }, agents: { a: { key: 'env:A_KEY', rules: [] } } },
      dns: async () => ({ address: '127.0.0.9', family: 4 }),
    });
    const auth = 'a:a-agent-key';
    const afterLookup = /resolves to a refused destination/;
    expect(await connectStatus(proxy.port, 'api.github.example:443', auth)).toMatch(afterLookup);
    const planted = join(process.env['KEYWAY_LISTENERS_DIR']!, `${process.pid}-0123456789abcdef.json`);
    writeFileSync(planted, `${JSON.stringify({ pid: 1, listeners: [{ kind: 'proxy', host: '127.0.0.1', port: 443 }] })}\n`);
    // Another user's file (the tests run as root: give it to nobody).
    chownSync(planted, 65534, 65534);
    await new Promise((r) => setTimeout(r, 1_500)); // the registry rereads on change (watch, or within its recheck)
    const withForeign = await connectStatus(proxy.port, 'api.github.example:443', auth);
    expect(withForeign).toMatch(afterLookup);
    expect(withForeign).not.toMatch(/keyway listener/);
    // The same file owned by keyway's own user: the name is refused before its lookup, as for
    // keyway's own ports (a name could be re-pointed at this host between check and dial).
    chownSync(planted, process.getuid!(), process.getgid!());
    writeFileSync(planted, `${JSON.stringify({ pid: 1, listeners: [{ kind: 'proxy', host: '127.0.0.1', port: 443 }] })}\n`);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await connectStatus(proxy.port, 'api.github.example:443', auth)).toMatch(/port 443 is a keyway listener/);
  });
});

describe('listener registry: the entry of a process that is gone', () => {
  it('is pruned by a keyway that starts, and by a running one asked about its port', async () => {
    const dir = process.env['KEYWAY_LISTENERS_DIR']!;
    const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
    const plant = (pid: number, port: number) => {
      const file = join(dir, `${pid}-${randomBytes(8).toString('hex')}.json`);
      writeFileSync(file, `${JSON.stringify({ pid, listeners: [{ kind: 'proxy', host: '127.0.0.1', port }] })}\n`);
      return file;
    };
    const before = plant(deadPid(), 40_101);
    proxy = await startProxy();
    // keyway's own entry is in, the dead one out: written on start, which prunes the directory.
    expect(existsSync(before)).toBe(false);
    const texts = readdirSync(dir).map((n) => readFileSync(join(dir, n), 'utf8'));
    expect(texts.some((t) => t.includes(`"port":${proxy!.port}`))).toBe(true);

    // A dead pid's entry for a port where something does listen: never a refusal, and gone once read.
    const upstream = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    const after = plant(deadPid(), port);
    const { socket, status, head } = await openConnect(proxy.port, `127.0.0.1:${port}`);
    socket.destroy();
    upstream.close();
    expect(status, head).toBe(200);
    expect(existsSync(after)).toBe(false);
  });
});
