// Binding a listener and telling the host about it. A port that cannot be bound fails start with
// one line naming it (and the keyway already there, if any), never a raw socket error.
import { once } from 'node:events';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'pino';
import type { ListenAddress } from '../config/index.ts';
import { registerListeners, type KeywayListener, type Registration } from '../egress/listener-registry.ts';
import { KeywayError } from '../errors/index.ts';
import { announceRunningProxy, listenFailure } from '../running-proxy.ts';
import type { Closers } from './closers.ts';
import type { Parts } from './parts.ts';

/**
 * Listens, or fails with one line naming the address (and the keyway already there, if any).
 * `reusePort`: beside other processes on the same port (proxy.workers), the kernel spreading
 * connections among them.
 */
export async function listenOn(server: Server, address: ListenAddress, key: string, runningFile: string, reusePort = false): Promise<void> {
  server.listen(reusePort ? { port: address.port, host: address.host, reusePort } : { port: address.port, host: address.host });
  try {
    await once(server, 'listening');
  } catch (err) {
    throw await asListenFailure(err, key, address, runningFile);
  }
}

/** A listen error (port in use, no permission, no such address) as keyway's one line; any other error as it is. */
export async function asListenFailure(err: unknown, key: string, address: ListenAddress, runningFile: string): Promise<unknown> {
  return isListenError(err) ? await listenFailure(err, key, address, runningFile) : err;
}

function isListenError(err: unknown): boolean {
  return ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes((err as NodeJS.ErrnoException).code ?? '');
}

/**
 * Enters this process's listeners in the host's registry, so that other keyways refuse them as
 * destinations. A registry this process cannot trust or write is not a reason to stop: it warns.
 */
export async function announceListeners(dir: string, proxy: AddressInfo, admin: AddressInfo | undefined, logger: Logger): Promise<Registration | undefined> {
  const entries: KeywayListener[] = [{ kind: 'proxy', host: proxy.address, port: proxy.port }];
  if (admin) entries.push({ kind: 'admin', host: admin.address, port: admin.port });
  try {
    return await registerListeners(dir, entries);
  } catch (err) {
    logger.warn(
      { err: { message: (err as Error).message } },
      "could not register this keyway's listeners; other keyways on this host will not refuse them as destinations",
    );
    return undefined;
  }
}

/**
 * Says where keyway listens, once every listener is up: the host's registry (other keyways refuse
 * these ports as destinations), then data/proxy.json, unless this proxy keeps to itself (announce:
 * false). The registration is withdrawn when the parts close.
 */
export async function announceKeyway(
  parts: Parts,
  closers: Closers,
  proxy: AddressInfo,
  admin: AddressInfo | undefined,
  role: 'start' | 'contain',
  door?: string,
): Promise<Registration | undefined> {
  const registration = await announceListeners(parts.registryDir, proxy, admin, parts.logger);
  closers.add('listener registration', () => registration?.remove());
  const at = (a: AddressInfo) => ({ host: a.address, port: a.port });
  if (parts.options.announce !== false)
    await announceRunningProxy(parts.services.paths.runningProxy, {
      proxy: at(proxy),
      admin: admin ? at(admin) : null,
      started_at: parts.startedAt,
      role,
      ...(door === undefined ? {} : { door }),
    });
  return registration;
}

/** Unix socket paths longer than this do not fit sockaddr_un (108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * Binds the contain door (proxy/transparent/contain-door.ts) at data/running/PID.sock, mode 0600.
 * Returns its path, or undefined where it cannot be (a home path too long for a Unix socket, a
 * folder it cannot write): keyway run --contain then runs a keyway of its own, as before.
 */
export async function openContainDoor(door: Server, runningFile: string, closers: Closers, logger: Logger): Promise<string | undefined> {
  const path = join(dirname(runningFile), 'running', `${process.pid}.sock`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    logger.info({ path }, 'no contain door: the home path is too long for a Unix socket; keyway run --contain will run its own keyway');
    return undefined;
  }
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 0700 whatever it was made with before; the socket made under umask 077, so that it is never,
    // for a moment, reachable by another user between bind and chmod.
    chmodSync(dirname(path), 0o700);
    rmSync(path, { force: true });
    const umask = process.umask(0o077);
    try {
      door.listen(path);
      await once(door, 'listening');
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
  } catch (err) {
    logger.warn({ err: { code: (err as NodeJS.ErrnoException).code } }, 'no contain door; keyway run --contain will run its own keyway');
    if (door.listening) door.close();
    return undefined;
  }
  closers.add('contain door', () => {
    if (door.listening) door.close();
    rmSync(path, { force: true });
  });
  return path;
}

/** Starts proxy.transparent.dns_listen's answerer, closed with keyway. */
export async function answerDns(at: ListenAddress, closers: Closers): Promise<void> {
  try {
    // Loaded here, not with keyway: the answerer and dns-packet stay out of every proxy without dns_listen.
    const { startDnsAnswerer } = await import('../proxy/transparent/dns-answerer.ts');
    const answerer = await startDnsAnswerer(at);
    closers.add('dns answerer', () => answerer.close());
  } catch (err) {
    throw new KeywayError(
      'listen_failed',
      `proxy.transparent.dns_listen ${at.host}:${at.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
}
