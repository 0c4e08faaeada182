import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import { http } from '../net/node-http.ts';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { buildConnector, type Dispatcher } from '../net/undici.ts';
import { upstreamPools } from './origin-pools.ts';
import { PrewarmingConnector } from './prewarm.ts';
import { EgressProxy } from './egress-proxy.ts';
import { KeywayError, ProxyError } from '../errors/index.ts';
import { lookupFunction, type Resolver } from './resolve.ts';
import { ClientTlsPools } from './client-tls.ts';
import type { Grant } from '../credentials/grant.ts';

export interface UpstreamOptions {
  resolve: Resolver;
  /** Extra CA files trusted for upstreams, beside the system's (proxy.upstream_ca). */
  extraCaFiles: readonly string[];
  /** How long to wait for response headers. */
  headersTimeoutMs: number;
  /** egress.proxy: the company's proxy every connection goes through by CONNECT (egress-proxy.ts). */
  egress?: EgressSettings | undefined;
  /** The trust store of `extraCaFiles`, built once for every upstream of a keyway (trustStore); else built here. */
  trust?: TrustStore | undefined;
}

/** The CAs upstreams are verified against and the one secure context holding them. */
export interface TrustStore {
  readonly ca: string[];
  readonly secureContext: SecureContext;
}

/**
 * The system's CAs and `extraCaFiles`, parsed once into a secure context: building one parses the
 * whole system store (~6 ms), which a keyway's two upstreams (agents' hosts, token endpoints) share.
 */
export function trustStore(extraCaFiles: readonly string[]): TrustStore {
  const ca = loadTrustedCas(extraCaFiles);
  return { ca, secureContext: createSecureContext({ ca }) };
}

/** egress.proxy, read: the URL with its credentials, and the hosts reached directly. */
export interface EgressSettings {
  readonly url: URL;
  readonly noProxy: readonly string[];
  readonly connectTo: 'address' | 'name';
}

/** The connections keyway opens to real hosts: verified TLS, kept alive, one address per name. */
export interface Upstream {
  readonly dispatcher: Dispatcher;
  /**
   * The dispatcher for a request made with `grant`: its own pool when it presents a client
   * certificate (client-tls.ts), else the shared one. Only for a request carrying the grant's credential.
   */
  dispatcherFor(grant: Grant | undefined): Dispatcher;
  /** The same for a WebSocket upgrade (Node's https.request). */
  httpsAgentFor(grant: Grant | undefined): HttpsAgent;
  /** For WebSocket upgrades (websocket/forwarder.ts), which go through Node's own http(s).request on these agents. */
  readonly httpsAgent: HttpsAgent;
  readonly httpAgent: HttpAgent;
  /** egress.proxy, when set: blind tunnels go through it too (proxy/driver/tunnel.ts). */
  readonly egress: EgressProxy | undefined;
  /** Starts the TLS connection to a newly intercepted host early (see prewarm.ts). */
  prewarm(host: string, port: number): void;
  readonly headersTimeoutMs: number;
  /** The CA files it trusts beside the system's, as loaded at start (proxy.upstream_ca needs a restart). */
  readonly extraCaFiles: readonly string[];
  close(): Promise<void>;
}

export function loadTrustedCas(extraCaFiles: readonly string[]): string[] {
  const extra = extraCaFiles.map((file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new KeywayError('config_invalid', `proxy.upstream_ca: cannot read ${file}`, { cause: err });
    }
  });
  return [...rootCertificates, ...extra];
}

export function createUpstream(options: UpstreamOptions): Upstream {
  // One secure context for every upstream connection: passing `ca` instead makes Node parse the
  // whole trust store again for each new connection (measured: ~8 ms and ~1 MiB per connection).
  const { ca, secureContext } = options.trust ?? trustStore(options.extraCaFiles);
  const lookup = lookupFunction(options.resolve);
  const egress = options.egress && new EgressProxy({ ...options.egress, secureContext, resolve: options.resolve });
  const direct = buildConnector({ secureContext, lookup, rejectUnauthorized: true, ALPNProtocols: ['h2', 'http/1.1'], timeout: 10_000 });
  const connector = new PrewarmingConnector(egress ? egress.connector(direct) : direct);
  const dispatcher = upstreamPools(connector.connect, options.headersTimeoutMs);
  const clientTls = new ClientTlsPools({
    ca,
    lookup,
    headersTimeoutMs: options.headersTimeoutMs,
    egress: options.egress,
    resolve: options.resolve,
    proxyContext: secureContext,
  });
  const httpsAgent = egress ? egress.httpsAgent({ secureContext, lookup, keepAlive: false }) : new HttpsAgent({ secureContext, lookup, keepAlive: false });
  const httpAgent = egress ? egress.httpAgent({ lookup, keepAlive: false }) : new http.Agent({ lookup, keepAlive: false });
  return {
    extraCaFiles: [...options.extraCaFiles],
    dispatcher,
    dispatcherFor(grant) {
      const cert = grant?.clientCertificate;
      // A certificate that cannot be used was refused before this (credential-source.ts): never the shared pool.
      if (cert === undefined) return dispatcher;
      if (!cert.ok) throw new ProxyError('internal_error', `grant "${grant!.id}" has an unusable client certificate`);
      return clientTls.dispatcherFor(grant!.id, cert);
    },
    httpsAgentFor(grant) {
      const cert = grant?.clientCertificate;
      if (cert === undefined) return httpsAgent;
      if (!cert.ok) throw new ProxyError('internal_error', `grant "${grant!.id}" has an unusable client certificate`);
      return clientTls.httpsAgentFor(grant!.id, cert);
    },
    prewarm: (host, port) => connector.prewarm(host, port),
    egress,
    httpsAgent,
    httpAgent,
    headersTimeoutMs: options.headersTimeoutMs,
    async close() {
      connector.close();
      await clientTls.close();
      httpsAgent.destroy();
      httpAgent.destroy();
      await dispatcher.close().catch(() => dispatcher.destroy());
    },
  };
}
