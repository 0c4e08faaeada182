// What the admin listener says to a CONNECT: someone pointed HTTPS_PROXY at the admin port. The
// words go in the JSON body and in the status line's reason phrase, which is all that curl -v, git
// and Python's requests show of a refused CONNECT.

/** The message naming the proxy to use instead (its address only: never the credentials in the URL). */
export function connectRefusal(proxyUrl: string): string {
  const url = new URL(proxyUrl);
  return `this is keyway's admin API, not its proxy: point HTTPS_PROXY at ${url.protocol}//${url.host}`;
}

/**
 * Text as a reason phrase may carry it (RFC 9112: tab, space, visible ASCII): anything else, a CR
 * or LF that would end the status line above all, becomes a space.
 */
export function reasonPhrase(text: string): string {
  return text.replace(/[^\t\x20-\x7e]/g, ' ');
}
