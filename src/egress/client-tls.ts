import type { LookupFunction } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { LoadedClientCertificate } from '../credentials/client-certificate.ts';
import { buildConnector, type Dispatcher } from '../net/undici.ts';
import { upstreamPools } from './origin-pools.ts';
import { EgressProxy } from './egress-proxy.ts';
import type { Resolver } from './resolve.ts';
import type { EgressSettings } from './upstream.ts';

// Connections that present a grant's client certificate (mTLS) are that grant's alone: each grant
// with a certificate gets its own set of pools (origin-pools.ts), so its own pool of connections and its own TLS
// session cache. undici pools by origin, so one shared Agent would hand a connection opened with
// grant A's certificate to grant B's request (or an ungranted one) for the same host, and the
// upstream would take that request as A's; and a TLS session resumed from A's handshake carries A's
// identity too. Separate sets share neither, in either direction: the default pool
// (egress/upstream.ts, where prewarmed connections also go) never presents a certificate.

export interface ClientTlsOptions {
  /** The trusted CAs, as the default pool has them. */
  ca: string[];
  lookup: LookupFunction;
  headersTimeoutMs: number;
  /** egress.proxy: these connections go through it too. */
  egress?: EgressSettings | undefined;
  /** The trust store an https:// egress proxy is verified against (no client certificate: that is for the real host). */
  proxyContext: SecureContext;
  resolve: Resolver;
}

interface Pool {
  readonly poolKey: string;
  readonly agent: Dispatcher;
  readonly secureContext: SecureContext;
  /** For WebSocket upgrades (Node's https.request): never kept alive, like the shared one. */
  httpsAgent?: HttpsAgent;
  readonly egress: EgressProxy | undefined;
}

export class ClientTlsPools {
  readonly #o: ClientTlsOptions;
  /** By grant id: one pool per grant, for the certificate it has now. */
  readonly #pools = new Map<string, Pool>();

  constructor(options: ClientTlsOptions) {
    this.#o = options;
  }

  /** The dispatcher for requests made with `grantId`, whose client certificate is `cert`. */
  dispatcherFor(grantId: string, cert: LoadedClientCertificate): Dispatcher {
    return this.#pool(grantId, cert).agent;
  }

  /** The https.Agent for a WebSocket upgrade made with `grantId` (no keep-alive: nothing to share). */
  httpsAgentFor(grantId: string, cert: LoadedClientCertificate): HttpsAgent {
    const pool = this.#pool(grantId, cert);
    const options = { secureContext: pool.secureContext, lookup: this.#o.lookup, keepAlive: false };
    pool.httpsAgent ??= pool.egress ? pool.egress.httpsAgent(options) : new HttpsAgent(options);
    return pool.httpsAgent;
  }

  #pool(grantId: string, cert: LoadedClientCertificate): Pool {
    const pool = this.#pools.get(grantId);
    if (pool?.poolKey === cert.poolKey) return pool;
    // A certificate replaced (or a grant id reused): the old connections finish what they carry, then close.
    if (pool) {
      void pool.agent.close().catch(() => pool.agent.destroy());
      pool.httpsAgent?.destroy();
    }
    // One secure context per certificate, made once (as the default pool's is).
    const secureContext = createSecureContext({ ca: this.#o.ca, cert: cert.certificate, key: cert.privateKey });
    const egress = this.#o.egress && new EgressProxy({ ...this.#o.egress, secureContext: this.#o.proxyContext, resolve: this.#o.resolve });
    const next: Pool = { poolKey: cert.poolKey, agent: this.#agent(secureContext, egress), secureContext, egress };
    this.#pools.set(grantId, next);
    return next;
  }

  #agent(secureContext: SecureContext, egress: EgressProxy | undefined): Dispatcher {
    const direct = buildConnector({ secureContext, lookup: this.#o.lookup, rejectUnauthorized: true, ALPNProtocols: ['h2', 'http/1.1'], timeout: 10_000 });
    return upstreamPools(egress ? egress.connector(direct) : direct, this.#o.headersTimeoutMs);
  }

  async close(): Promise<void> {
    const agents = [...this.#pools.values()].map((p) => p.agent);
    for (const pool of this.#pools.values()) pool.httpsAgent?.destroy();
    this.#pools.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}
