import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { pino } from 'pino';
import { Client, ProxyAgent, type Dispatcher } from 'undici';
import { startKeyway } from '../app/index.ts';
import type { Config } from '../config/index.ts';
import { findMasterKey } from '../credentials/store/index.ts';
import { keyInDatabase, readDatabaseKeyRow } from '../credentials/store/postgres-key.ts';
import { readSecretRef } from '../config/secret-ref.ts';
import { KeywayError } from '../errors/index.ts';
import { keywayPaths } from '../paths.ts';
import { fetchProxyCredentials } from '../proxy/identify/agent.ts';
import { findRunningProxy } from '../running-proxy.ts';
import { proxyUrl } from './proxy-url.ts';

// Where `keyway fetch` sends its request: the proxy running for this home, or one started in this
// process for the one request. And a client for it that keeps what keyway said when it refused the
// CONNECT itself (undici reports only "Proxy response (403) !== 200").

export interface FetchProxy {
  /** The proxy URL, with the agent's credentials when given. */
  url: string;
  caPath: string;
  /** Stops the in-process proxy (after its audit lines are written); nothing for a running one. */
  close(): Promise<void>;
}

export interface AgentCredentials {
  id: string;
  key: string;
}

export async function openFetchProxy(
  config: Config,
  configFile: string | undefined,
  agent: AgentCredentials | undefined,
  env: NodeJS.ProcessEnv,
): Promise<FetchProxy> {
  const paths = keywayPaths(config);
  const caPath = join(paths.certsDir, 'ca.pem');
  // A one-request proxy must not set keyway up as a side effect (a CA, a key, a store).
  if (!existsSync(caPath)) throw notSetUp(config, 'no CA');
  if (findRunningProxy(paths.runningProxy) !== undefined) return { url: proxyUrl(config, agent), caPath, close: async () => undefined };
  // With store.backend postgres there is no store file: the store is the database, and what this
  // process would make is a master key (the database's schema is made by whoever set it up).
  if (config.store.backend === 'postgres') {
    // With a KMS the database keeps the key (wrapped); else it is this home's.
    const hasKey =
      config.store.key !== 'file' && keyInDatabase(config, env) && config.store.url
        ? (await readDatabaseKeyRow(readSecretRef(config.store.url, env, config.home))) !== undefined
        : (await findMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key })) !== undefined;
    if (!hasKey) throw notSetUp(config, 'no master key for the database store');
  } else if (!existsSync(paths.store)) throw notSetUp(config, 'no store');
  // Its port is on loopback, where any local process (another home's agent, through its keyway)
  // could find it: it serves only this request, whose proxy password starts with this key.
  const callerKey = randomBytes(32).toString('base64url');
  const running = await startKeyway({
    home: config.home,
    configFile,
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    env,
    // Only what would stop it: this process's stdout is the response body.
    logger: pino({ level: 'error' }, pino.destination(2)),
    announce: false,
    callerKey,
  });
  const credentials = fetchProxyCredentials(callerKey, agent);
  const auth = `${encodeURIComponent(credentials.id)}:${encodeURIComponent(credentials.key)}@`;
  return { url: `http://${auth}127.0.0.1:${running.proxyAddress.port}`, caPath: running.ca.certPath, close: () => running.stop({ drainMs: 2_000 }) };
}

function notSetUp(config: Config, what: string): KeywayError {
  return new KeywayError('not_found', `keyway is not set up in ${config.home} (${what}): run \`keyway init\` there, or pass --home`);
}

/** What keyway answered to a CONNECT it refused: its code, one-line reason and JSON body. */
export interface ConnectRefusal {
  status: number;
  code: string | undefined;
  reason: string | undefined;
  body: string;
}

export interface FetchClient {
  dispatcher: Dispatcher;
  /** Set when the proxy refused the CONNECT (the request then fails with a bare status in undici). */
  refusal(): ConnectRefusal | undefined;
}

/**
 * A ProxyAgent trusting keyway's CA explicitly (plus the system's, for hosts keyway tunnels blind).
 * http:// goes as an absolute-form request (keyway's plain-HTTP path), https:// through CONNECT.
 */
export function fetchClient(proxy: FetchProxy, target: URL): FetchClient {
  let refused: ConnectRefusal | undefined;
  const dispatcher = new ProxyAgent({
    uri: proxy.url,
    requestTls: { ca: [...rootCertificates, readFileSync(proxy.caPath, 'utf8')] },
    proxyTunnel: target.protocol === 'https:',
    clientFactory: (origin, options) => {
      const client = new Client(origin, options);
      const connect = client.connect.bind(client) as (params: Dispatcher.ConnectOptions) => Promise<Dispatcher.ConnectData>;
      // undici destroys the socket of a refused CONNECT unread: read keyway's answer first.
      client.connect = (async (params: Dispatcher.ConnectOptions) => {
        const answer = await connect(params);
        if (answer.statusCode !== 200) refused = await readRefusal(answer);
        return answer;
      }) as typeof client.connect;
      return client;
    },
  });
  return { dispatcher, refusal: () => refused };
}

const MAX_REFUSAL_BODY = 16 * 1024;
const REFUSAL_READ_MS = 2_000;

async function readRefusal(answer: Dispatcher.ConnectData): Promise<ConnectRefusal> {
  const header = (name: string) => {
    const value = answer.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const length = Math.min(Number(header('content-length') ?? MAX_REFUSAL_BODY), MAX_REFUSAL_BODY);
  const body = await readUpTo(answer.socket, Number.isFinite(length) ? length : MAX_REFUSAL_BODY);
  return { status: answer.statusCode, code: header('x-keyway-error'), reason: header('x-keyway-reason'), body };
}

/** Up to `limit` bytes, until the peer closes, or for REFUSAL_READ_MS at most. */
function readUpTo(socket: Duplex, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(Buffer.concat(chunks).subarray(0, limit).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) done();
    };
    const timer = setTimeout(done, REFUSAL_READ_MS);
    socket.on('data', onData);
    socket.once('end', done);
    socket.once('close', done);
    socket.once('error', done);
    socket.resume();
    if (limit === 0) done();
  });
}
