import type { Agent as HttpAgent, AgentOptions, RequestOptions } from 'node:http';
import { http } from '../net/node-http.ts';
import type { Duplex } from 'node:stream';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type SecureContext } from 'node:tls';
import { ProxyError } from '../errors/index.ts';
import type { Connector } from '../net/undici.ts';
import { type AddressSet, compileAddressSet } from '../policy/cidr.ts';
import { egressProxyRefused, EgressProxySelf } from './egress-self.ts';
import type { Resolver } from './resolve.ts';

// egress.proxy: every connection keyway makes to a real host (upstreams, token endpoints, issuers'
// keys, approval webhooks) goes through the company's HTTP proxy by CONNECT, except to hosts on
// egress.no_proxy. keyway still resolves and checks the name first (loopback, private, metadata
// refused unless proxy.allow_networks), and by default (egress.connect_to: address) asks the proxy
// for the very address it checked, so a name that answers keyway one address and the proxy another
// (DNS rebinding) reaches nothing keyway did not check; TLS still names the host. With connect_to:
// name (a proxy that alone has DNS, or filters by name), the CONNECT names the host and the proxy
// resolves it: keyway checks what it can resolve itself, and cannot know the address the proxy
// reaches (docs/operations.md says so).

type Done = (err: Error | null, stream: Duplex) => void;

/** How long the proxy has to accept the connection and answer the CONNECT. */
const CONNECT_TIMEOUT_MS = 10_000;
/** The longest CONNECT answer head read. */
const MAX_ANSWER_HEAD = 16 * 1024;

export interface EgressProxyOptions {
  /** The proxy's URL, credentials included (resolved from their reference). */
  url: URL;
  /** egress.no_proxy: names (a name covers its subdomains; `.name` and `*.name` the same), IPs, CIDR ranges. */
  noProxy: readonly string[];
  /** For an https:// proxy: the CAs it is verified against (the upstream trust store). */
  secureContext: SecureContext;
  /** keyway's resolver with its egress checks (proxy.hosts, then DNS, then the address policy). */
  resolve: Resolver;
  /** egress.connect_to: CONNECT to the address keyway resolved and checked (default), or by name. */
  connectTo?: 'address' | 'name' | undefined;
}

export class EgressProxy {
  readonly #o: EgressProxyOptions;
  readonly #authorization: string | undefined;
  readonly #names: string[] = [];
  readonly #addresses: AddressSet | undefined;
  /** The proxy as log lines and errors name it: scheme, host and port, never its credentials. */
  readonly label: string;
  /** Whether a destination is the proxy itself: never one (egress-self.ts). */
  readonly self: EgressProxySelf;

  constructor(options: EgressProxyOptions) {
    this.#o = options;
    const { url } = options;
    this.label = `${url.protocol}//${url.host}`;
    this.self = new EgressProxySelf(url);
    if (url.username !== '' || url.password !== '') {
      // A URL's userinfo is percent-encoded; a bare `%` that is not an escape is taken as written.
      const user = decodeLoosely(url.username);
      const pass = decodeLoosely(url.password);
      this.#authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const ranges: string[] = [];
    for (const entry of options.noProxy) {
      if (isIP(entry) !== 0 || entry.includes('/')) ranges.push(entry);
      else this.#names.push(entry.toLowerCase().replace(/^\*?\./, ''));
    }
    // The config schema checked every range.
    const set = compileAddressSet(ranges);
    this.#addresses = typeof set === 'string' ? undefined : set;
  }

  /** Whether a connection to `host` goes through the proxy (false: egress.no_proxy names it). */
  covers(host: string): boolean {
    const name = host
      .toLowerCase()
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
    if (isIP(name) !== 0) return !(this.#addresses?.has(name) ?? false);
    return !this.#names.some((entry) => entry === '*' || name === entry || name.endsWith(`.${entry}`));
  }

  /** A connection to host:port through the proxy, once the proxy answered 200 to the CONNECT. */
  async tunnel(host: string, port: number): Promise<Socket> {
    const target = await this.#target(host);
    // Checked here, on the address the CONNECT names, whoever asked: a check made before (proxy/destination.ts) looked up the name on its own.
    if (await this.self.is(host, target.address, port)) throw refusal(egressProxyRefused(`${host}:${port}`));
    const socket = await this.#connectToProxy();
    try {
      return await this.#askConnect(socket, target.authority, port);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** undici's connect function: through the proxy for covered hosts, else `direct`. */
  connector(direct: Connector): Connector {
    return (options, callback) => {
      const host = options.hostname;
      if (!this.covers(host)) return direct(options, callback);
      const https = options.protocol === 'https:';
      const port = Number(options.port) || (https ? 443 : 80);
      this.tunnel(host, port).then(
        // TLS to the real host over the tunnel, with the same options (trust store, ALPN, session cache).
        (socket) => (https ? direct({ ...options, httpSocket: socket }, callback) : callback(null, socket)),
        (err: Error) => callback(err, null),
      );
    };
  }

  /** Node agents for WebSocket upgrades (node:https / node:http), tunnelled the same way. */
  httpsAgent(options: HttpsAgentOptions): HttpsAgent {
    const agent = new HttpsAgent(options);
    const direct = agent.createConnection.bind(agent);
    agent.createConnection = (connect: RequestOptions & ConnectionOptions, done?: Done) => {
      const host = String(connect.servername || connect.host || '');
      if (!this.covers(host)) return direct(connect, done);
      this.tunnel(host, Number(connect.port) || 443).then(
        (raw) => done?.(null, tlsConnect({ ...connect, socket: raw } as ConnectionOptions)),
        (err: Error) => done?.(err, undefined as unknown as Duplex),
      );
      return undefined;
    };
    return agent;
  }

  httpAgent(options: AgentOptions): HttpAgent {
    const agent = new http.Agent(options);
    const direct = agent.createConnection.bind(agent);
    agent.createConnection = (connect: RequestOptions, done?: Done) => {
      const host = String(connect.host ?? '');
      if (!this.covers(host)) return direct(connect, done);
      this.tunnel(host, Number(connect.port) || 80).then(
        (raw) => done?.(null, raw),
        (err: Error) => done?.(err, undefined as unknown as Duplex),
      );
      return undefined;
    };
    return agent;
  }

  /** What the CONNECT names: the address keyway resolved and checked, or (connect_to: name) the host, checked as far as keyway can. */
  async #target(host: string): Promise<{ authority: string; address: string | undefined }> {
    try {
      const { address } = await this.#o.resolve(host);
      return { authority: this.#o.connectTo === 'name' ? host : address, address };
    } catch (err) {
      if (err instanceof ProxyError && err.code === 'host_not_allowed') throw refusal(err);
      // A name keyway cannot resolve: the proxy's to resolve only when the config says so.
      if (this.#o.connectTo === 'name') return { authority: host, address: undefined };
      throw refusal(
        new ProxyError('upstream_unreachable', `cannot resolve ${host}`, {
          hint: 'where only the egress proxy can resolve names, set egress.connect_to: name (keyway then cannot check the address it reaches)',
        }),
      );
    }
  }

  #connectToProxy(): Promise<Socket> {
    const { url, secureContext } = this.#o;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const https = url.protocol === 'https:';
    const port = Number(url.port) || (https ? 443 : 80);
    return new Promise((resolve, reject) => {
      const socket = https
        ? tlsConnect({ host, port, servername: isIP(host) === 0 ? host : undefined, secureContext, ALPNProtocols: ['http/1.1'] })
        : netConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      socket.once(https ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(this.#unreachable(`could not be reached (${err.code ?? err.message})`, err));
      };
      socket.once('error', onError);
    });
  }

  #askConnect(socket: Socket, host: string, port: number): Promise<Socket> {
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const finish = (err: Error | undefined) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
        if (err) reject(err);
      };
      const onError = (err: NodeJS.ErrnoException) => finish(this.#unreachable(`failed during CONNECT ${authority} (${err.code ?? err.message})`, err));
      const onClose = () => finish(this.#unreachable(`closed the connection before answering CONNECT ${authority}`));
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > MAX_ANSWER_HEAD) finish(this.#unreachable(`answered CONNECT ${authority} with a head over 16 KiB`));
          return;
        }
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, Math.min(end, 64)).toString('latin1'))?.[1] ?? 0);
        if (status >= 200 && status < 300) {
          // Paused first: a flowing socket would emit what is unshifted below to no listener. Whoever
          // reads the tunnel next (a pipe, undici) resumes it.
          socket.pause();
          finish(undefined);
          // Bytes past the head already belong to the real host (a server speaking first).
          const rest = head.subarray(end + 4);
          if (rest.length > 0) socket.unshift(rest);
          resolve(socket);
          return;
        }
        if (status === 407) {
          finish(
            this.#unreachable(
              this.#authorization === undefined
                ? `asks for credentials (407): give them in egress.proxy (a reference, env:NAME, to a URL with user:password)`
                : `refused keyway's credentials (407)`,
            ),
          );
          return;
        }
        finish(this.#unreachable(status === 0 ? `did not answer CONNECT ${authority} with HTTP` : `answered ${status} to CONNECT ${authority}`));
      };
      const timer = setTimeout(
        () => finish(this.#unreachable(`did not answer CONNECT ${authority} within ${CONNECT_TIMEOUT_MS / 1000} s`)),
        CONNECT_TIMEOUT_MS,
      );
      socket.on('data', onData);
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.write(
        `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${this.#authorization === undefined ? '' : `Proxy-Authorization: ${this.#authorization}\r\n`}\r\n`,
      );
    });
  }

  /** An error undici and Node pass along, carrying keyway's answer (upstream-errors.ts finds it). */
  #unreachable(what: string, cause?: unknown): Error {
    const proxyError = new ProxyError('upstream_unreachable', `the egress proxy ${this.label} ${what}`, {
      hint: 'check egress.proxy in the config, and that the proxy lets keyway CONNECT to this host and port',
    });
    return Object.assign(new Error(proxyError.message, cause === undefined ? undefined : { cause }), { code: 'EKEYWAYEGRESS', proxyError });
  }
}

function decodeLoosely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function refusal(err: ProxyError): Error {
  return Object.assign(new Error(err.message), { code: 'EKEYWAYREFUSED', proxyError: err });
}
