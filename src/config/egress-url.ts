// egress.proxy's URL: checked where the config is read (schema/values.ts) and, for a URL behind a
// reference, where keyway reads it at start (egress/egress-settings.ts). Messages never quote it:
// it may carry a password.

/** What is wrong with a proxy URL, or undefined. Credentials only in a URL read from a reference. */
export function egressProxyUrlError(text: string, credentialsAllowed: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'expected a URL such as http://proxy.corp.example:3128';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected http:// or https://, got ${url.protocol}//`;
  if (!credentialsAllowed && (url.username !== '' || url.password !== '')) {
    return 'a URL with credentials goes by reference: egress.proxy: env:NAME (or file:PATH) holding the URL';
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '')
    return 'expected the proxy as scheme://host:port, with no path or query';
  return undefined;
}
