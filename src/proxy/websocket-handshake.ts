import type { IncomingHttpHeaders } from 'node:http';

/**
 * Which requests with `Connection: Upgrade` take the upgrade path (the inner server's
 * shouldUpgradeCallback). Only a real WebSocket handshake (RFC 6455 4.1: GET, `Upgrade: websocket`,
 * a 16-byte Sec-WebSocket-Key, version 13) does; anything else (`Upgrade: h2c`, a GET with upgrade
 * headers and no key) is an ordinary request, forwarded with the upgrade headers removed as
 * hop-by-hop, so it gets the whole normal path: rules, replay, the leak guard, keep-alive.
 * Nothing then reaches a raw two-way pipe that keyway does not understand. Stage budget judges a
 * request as a socket only when it is one of these (any other is judged as the request it is).
 */
export function isWebSocketHandshake(req: { readonly method?: string | undefined; readonly headers: IncomingHttpHeaders }): boolean {
  if (req.method !== 'GET') return false;
  if (
    String(req.headers.upgrade ?? '')
      .trim()
      .toLowerCase() !== 'websocket'
  )
    return false;
  if (req.headers['sec-websocket-version'] !== '13') return false;
  const key = req.headers['sec-websocket-key'];
  return typeof key === 'string' && /^[A-Za-z0-9+/]{22}==$/.test(key.trim());
}
