// NO_PROXY as clients read it, for the warnings that say a request will go around keyway: `keyway
// env` sets NO_PROXY to loopback, so a first try at https://localhost:PORT reaches the API
// directly, with nothing injected and nothing audited, and nothing says so. curl, Python requests,
// Go and Node's env proxy agree on the part used here: a comma list of host names (a name also
// covers its subdomains, a leading dot optional), IP literals matched exactly, and `*` for all.

/** The loopback names `keyway env` puts in NO_PROXY (its clients never proxy them). */
export const LOOPBACK_NO_PROXY = 'localhost,127.0.0.1,::1';

/** Whether a client given this NO_PROXY sends a request for `host` straight there, not through the proxy. */
export function excludedByNoProxy(host: string, noProxy: string): boolean {
  const name = host
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    // A port after a name or an IPv4 address (one colon); an IPv6 literal has several.
    if (entry.split(':').length === 2) entry = entry.replace(/:\d+$/, '');
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entry === '') continue;
    if (entry === '*' || name === entry || name.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The http(s) URLs among a command's arguments (`curl -sS https://…`), for the NO_PROXY warning. */
export function urlsIn(args: readonly string[]): URL[] {
  const urls: URL[] = [];
  for (const arg of args) {
    if (!/^https?:\/\//i.test(arg)) continue;
    try {
      urls.push(new URL(arg));
    } catch {
      // not a URL after all
    }
  }
  return urls;
}

/** One line: this request goes around keyway, and how to try keyway on a local API instead. */
export function noProxyWarning(url: URL, noProxy: string): string {
  return `${url.protocol}//${url.host} is in NO_PROXY (${noProxy}), so the client goes straight there, not through keyway: nothing is injected and nothing is audited. To try keyway on a local API, give it a name that maps to loopback (proxy.hosts; docs/local-api.md, "Try it on a local API")`;
}
