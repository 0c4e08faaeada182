// The soak's upstream and token endpoint, in a worker thread: their TLS and HTTP work then runs on
// an event loop of its own, so it neither delays the load generator's schedule nor shows up as its
// lag. Talks to bench/soak/servers.ts by messages; counts are pushed twice a second and on request.
import { parentPort, workerData } from 'node:worker_threads';
import { startTokenEndpoint } from '../token-endpoint.ts';
import { startBenchUpstream } from '../upstream.ts';
import type { ServersRequest, ServersMessage, ServersSetup } from './servers.ts';

const port = parentPort;
if (!port) throw new Error('servers-worker runs only as a worker thread');
const setup = workerData as ServersSetup;

const tokenEndpoint = await startTokenEndpoint({
  clientId: setup.clientId,
  clientSecret: setup.clientSecret,
  initialRefreshToken: setup.initialRefreshToken,
  lifetimeS: setup.tokenLifetimeS,
});
const upstream = await startBenchUpstream(setup.secret, { host: setup.oauthHost, check: tokenEndpoint.check });

const post = (message: ServersMessage) => port.postMessage(message);
const counts = (id?: number): ServersMessage => ({ type: 'counts', id, upstream: upstream.counts, token: tokenEndpoint.counts });
const pusher = setInterval(() => post(counts()), 500);

port.on('message', (request: ServersRequest) => {
  switch (request.type) {
    case 'counts':
      post(counts(request.id));
      return;
    case 'closeIdle':
      upstream.closeIdle();
      tokenEndpoint.closeIdle();
      post({ type: 'done', id: request.id });
      return;
    case 'close':
      clearInterval(pusher);
      void Promise.all([upstream.close(), tokenEndpoint.close()]).finally(() => {
        post({ type: 'done', id: request.id });
        port.close();
      });
      return;
  }
});

post({ type: 'ready', upstreamPort: upstream.port, tokenUrl: tokenEndpoint.url });
