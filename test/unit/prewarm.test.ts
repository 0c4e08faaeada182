import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { buildConnector } from 'undici';
import { PrewarmingConnector } from '../../src/egress/prewarm.ts';

// The warm-up logic with a recording base connector: no network.

class FakeSocket extends EventEmitter {
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
  }
}

function recordingBase() {
  const calls: buildConnector.Options[] = [];
  const sockets: FakeSocket[] = [];
  const base: buildConnector.connector = (options, callback) => {
    calls.push(options);
    const socket = new FakeSocket();
    sockets.push(socket);
    setImmediate(() => callback(null, socket as unknown as Socket));
  };
  return { base, calls, sockets };
}

const connectVia = (connector: PrewarmingConnector, hostname: string, port = '443') =>
  new Promise<Socket>((resolve, reject) => connector.connect({ hostname, protocol: 'https:', port }, (err, s) => (err ? reject(err) : resolve(s!))));

describe('prewarming connector', () => {
  it('hands the warmed connection to the first request instead of opening another', async () => {
    const { base, calls, sockets } = recordingBase();
    const connector = new PrewarmingConnector(base);
    connector.prewarm('api.example.test', 443);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ hostname: 'api.example.test', port: '443', servername: 'api.example.test' });
    const socket = await connectVia(connector, 'api.example.test');
    expect(socket).toBe(sockets[0]);
    expect(calls).toHaveLength(1);
    // Later connections are ordinary, and a recently used origin is not warmed again.
    await connectVia(connector, 'api.example.test');
    connector.prewarm('api.example.test', 443);
    expect(calls).toHaveLength(2);
  });

  it('closes a warmed connection nobody claims, and connects afresh when a warm-up failed', async () => {
    const { base, sockets } = recordingBase();
    const connector = new PrewarmingConnector(base, { parkedMs: 20 });
    connector.prewarm('idle.example.test', 443);
    await new Promise((r) => setTimeout(r, 60));
    expect(sockets[0]?.destroyed).toBe(true);

    let attempts = 0;
    const failing = new PrewarmingConnector((_options, callback) => {
      attempts++;
      setImmediate(() => (attempts === 1 ? callback(new Error('refused'), null) : callback(null, new FakeSocket() as unknown as Socket)));
    });
    failing.prewarm('down.example.test', 443);
    await connectVia(failing, 'down.example.test');
    expect(attempts).toBe(2);
  });

  describe('with a fake clock', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("lets go of a claimed connection at once: no timer keeps it (and undici's pool for the origin) alive", async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const { base } = recordingBase();
      const connector = new PrewarmingConnector(base);
      connector.prewarm('api.example.test', 443);
      expect(vi.getTimerCount()).toBe(1);
      await connectVia(connector, 'api.example.test');
      expect(vi.getTimerCount()).toBe(0);
      connector.prewarm('other.example.test', 443);
      connector.close();
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
