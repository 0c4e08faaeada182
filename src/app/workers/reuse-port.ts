// What proxy.workers needs of the platform and of the ports before its workers bind them.
import { createServer } from 'node:net';
import { once } from 'node:events';
import type { ListenAddress } from '../../config/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { asListenFailure } from '../listen.ts';

/** SO_REUSEPORT listeners came in Node 22.12 and 23.1, on Linux and the BSDs. */
export function checkReusePort(platform: string = process.platform, version: string = process.versions.node): void {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const nodeHasIt = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  if (!nodeHasIt) throw new KeywayError('usage', `proxy.workers above 1 needs Node 22.12 or later (this is ${version}); set proxy.workers: 1 or upgrade Node`);
  if (!['linux', 'freebsd', 'openbsd', 'netbsd', 'dragonfly', 'sunos', 'aix'].includes(platform))
    throw new KeywayError('usage', `proxy.workers above 1 needs SO_REUSEPORT listeners, which ${platform} does not have; set proxy.workers: 1`);
}

/**
 * Fails, naming the holder, when the port is taken: bound once without SO_REUSEPORT, which the
 * kernel refuses while any socket holds the port, shared or not. Port 0 is always free.
 */
export async function checkPortFree(address: ListenAddress, key: string, runningFile: string): Promise<void> {
  if (address.port === 0) return;
  const probe = createServer();
  probe.listen({ port: address.port, host: address.host, exclusive: true });
  try {
    await once(probe, 'listening');
  } catch (err) {
    throw await asListenFailure(err, key, address, runningFile);
  }
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}
