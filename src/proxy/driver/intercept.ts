import { clientAddress, draftOn } from '../refuse.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { ProxyWiring } from './wiring.ts';
import type { Connection } from '../connection.ts';
import type { ProxyRuntime } from '../runtime.ts';
import { awaitFirstBytes, limitHandshake } from './timeouts.ts';

const TLS_HANDSHAKE = 0x16;

/**
 * ALPN on the client leg: h2 when offered, else http/1.1; neither ends the handshake with
 * no_application_protocol, as a fixed ALPNProtocols list does. A callback rather than that list:
 * Node turns the list into a small Buffer per socket, a slice of its shared 64 KiB pool, and a
 * kept-alive connection then holds a whole slab (64 connections held ~4 MiB in the soak's heap
 * snapshots).
 */
function chooseProtocol({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes('h2')) return 'h2';
  if (protocols.includes('http/1.1')) return 'http/1.1';
  return undefined;
}

/**
 * Terminates the client's TLS with a leaf for the CONNECT target, signed by keyway's CA, and hands
 * the decrypted stream to an inner server (inner.ts): the HTTP/2 one when the client chose h2 in
 * ALPN, the HTTP/1.1 one otherwise.
 * A client that speaks plain HTTP inside the tunnel is served too, as http (grants then need
 * allow_http). The first byte and the handshake are each bounded in time (proxy.timeouts).
 */
export function intercept({ inner, connections }: ProxyWiring, conn: Connection, client: Duplex, head: Buffer, preface = true): void {
  const { runtime, target } = conn;
  const timeouts = runtime.config.proxy.timeouts;
  connections.pending(client);
  const start = (first: Buffer) => {
    client.unshift(first);
    if (first[0] === TLS_HANDSHAKE) {
      // The leaf follows the CONNECT target, not SNI: the Host check and the upstream both use
      // the target, so a certificate for any other name would only hide a mismatch.
      const tlsSocket = new TLSSocket(client as Socket, {
        isServer: true,
        secureContext: runtime.tlsContext(target.host),
        ALPNCallback: chooseProtocol,
      });
      let secured = false;
      tlsSocket.on('error', (err: NodeJS.ErrnoException) => {
        runtime.logger.debug({ host: target.host, code: err.code }, 'client TLS failed (does it trust the keyway CA?)');
        if (!secured) recordDistrust(runtime, conn, client, err);
        client.destroy();
      });
      limitHandshake(tlsSocket, client, timeouts.handshake);
      conn.scheme = 'https';
      connections.handedOff(client, tlsSocket);
      // Which server reads it is known once ALPN has chosen, at the end of the handshake.
      tlsSocket.once('secure', () => {
        secured = true;
        if (tlsSocket.alpnProtocol === 'h2') {
          // tls.Server clears this flag when it emits 'secureConnection'; a TLSSocket made by hand
          // keeps it set, and node:http2 would wait for a 'secureConnect' that never comes.
          (tlsSocket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
          connections.http2(client, inner.http2(tlsSocket, conn, client));
        } else inner.http1(tlsSocket, conn);
      });
    } else {
      conn.scheme = 'http';
      connections.handedOff(client, client);
      inner.http1(client, conn);
      // The listener's parser let go of this socket paused and still marked consumed, so the inner
      // server reads it through 'data' events: without this nothing was read, and every plain
      // request inside a CONNECT hung.
      client.resume();
    }
  };
  // A redirected (transparent) connection had no CONNECT to answer.
  if (preface) client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) {
    start(head);
    return;
  }
  void awaitFirstBytes(client, timeouts.first_byte).then((first) => {
    if (first === undefined) runtime.logger.debug({ host: target.host }, 'CONNECT closed or timed out before its first byte');
    else start(first);
  });
}

/** A client's TLS alert that says it does not accept keyway's certificate (OpenSSL's ERR_SSL_..._ALERT_... codes). */
const DISTRUST_ALERT = /_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_UNSUPPORTED|DECRYPT_ERROR)$/;

/**
 * A client that does not trust keyway's CA ends the handshake with an alert and, until now, left no
 * trace in keyway: the audit line says so, with the fix (folded by the refusal budget when repeated).
 */
function recordDistrust(runtime: ProxyRuntime, conn: Connection, client: Duplex, err: NodeJS.ErrnoException): void {
  const alert = DISTRUST_ALERT.exec(err.code ?? '');
  if (alert === null) return;
  const draft = draftOn(conn, 'CONNECT', clientAddress(client as Socket));
  draft.event.decision = 'deny';
  draft.event.code = 'client_tls_failed';
  draft.event.message = `the client ended keyway's TLS handshake (${alert[1]!.toLowerCase().replaceAll('_', ' ')}): it does not trust keyway's CA`;
  draft.event.hint = 'point the client at keyway\'s CA: eval "$(keyway env)", or see `keyway doctor`';
  draft.commit(runtime);
}
