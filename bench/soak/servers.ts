// The main-thread side of bench/soak/servers-worker.ts: starts the bench upstream and token endpoint
// in a worker thread and keeps the latest counts they pushed.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { TokenEndpointCounts } from '../token-endpoint.ts';
import type { UpstreamCounts } from '../upstream.ts';

export interface ServersSetup {
  secret: string;
  clientId: string;
  clientSecret: string;
  initialRefreshToken: string;
  tokenLifetimeS: number;
  oauthHost: string;
}

export type ServersRequest = { type: 'counts' | 'closeIdle' | 'close'; id: number };

export type ServersMessage =
  | { type: 'ready'; upstreamPort: number; tokenUrl: string }
  | { type: 'counts'; id: number | undefined; upstream: UpstreamCounts; token: TokenEndpointCounts }
  | { type: 'done'; id: number };

export interface Counts {
  upstream: UpstreamCounts;
  token: TokenEndpointCounts;
}

export interface Servers {
  upstreamPort: number;
  tokenUrl: string;
  /** The counts last pushed (at most half a second old). */
  latest(): Counts;
  /** Counts as of now. */
  counts(): Promise<Counts>;
  /** Closes kept-alive connections that carry no request, as idle servers do. */
  closeIdle(): Promise<void>;
  close(): Promise<void>;
}

const WORKER = new URL('./servers-worker.ts', import.meta.url);
const REPLY_MS = 10_000;

export async function startServers(setup: ServersSetup): Promise<Servers> {
  const worker = new Worker(WORKER, { workerData: setup });
  let failure: Error | undefined;
  worker.on('error', (err) => (failure ??= err));
  const [ready] = (await Promise.race([
    once(worker, 'message'),
    once(worker, 'exit').then(() => {
      throw new Error(`soak servers worker exited during start: ${failure?.message ?? 'no error given'}`);
    }),
  ])) as [ServersMessage];
  if (ready.type !== 'ready') throw new Error(`soak servers worker: expected ready, got ${ready.type}`);

  let latest: Counts | undefined;
  let nextId = 1;
  const waiting = new Map<number, (m: ServersMessage) => void>();
  worker.on('message', (m: ServersMessage) => {
    if (m.type === 'counts') latest = { upstream: m.upstream, token: m.token };
    if (m.type !== 'ready' && m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const ask = (type: ServersRequest['type']): Promise<ServersMessage> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`soak servers worker did not answer ${type} within ${REPLY_MS} ms`));
      }, REPLY_MS);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(m);
      });
      worker.postMessage({ type, id } satisfies ServersRequest);
    });
  const zero: Counts = {
    upstream: {
      total: 0,
      viaKeyway: 0,
      withoutCredential: 0,
      withoutCredentialViaKeyway: 0,
      connectionsDirect: 0,
      connectionsViaKeyway: 0,
      viaPeer: {},
      oauth: { total: 0, okCurrent: 0, okPrevious: 0, refusedExpired: 0, refusedUnknown: 0, refusedMissing: 0 },
    },
    token: { calls: 0, refreshed: 0, invalidGrant: 0, invalidClient: 0, otherErrors: 0 },
  };

  return {
    upstreamPort: ready.upstreamPort,
    tokenUrl: ready.tokenUrl,
    latest: () => latest ?? zero,
    counts: async () => {
      const m = await ask('counts');
      if (m.type !== 'counts') throw new Error(`soak servers worker: expected counts, got ${m.type}`);
      return { upstream: m.upstream, token: m.token };
    },
    closeIdle: async () => void (await ask('closeIdle')),
    close: async () => {
      await ask('close').catch(() => undefined);
      await worker.terminate();
    },
  };
}
