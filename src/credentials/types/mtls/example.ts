import type { KindExample } from '../example.ts';

// A self-signed client certificate (P-256, valid until 2126) and its key, made for this example only.
const CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBljCCAT2gAwIBAgIUT8Wuyw7uFIKPRBz2irc8PzfyQvQwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa2V5d2F5IGV4YW1wbGUgY2xpZW50MCAXDTI2MTEyNjE2MzUy
MFoYDzIxMjYxMTAyMTYzNTIwWjAgMR4wHAYDVQQDDBVrZXl3YXkgZXhhbXBsZSBj
bGllbnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARH0+t6oA0LKEVzHJZ+klBx
WL34DHhHpxZXfNPcsnRbQ1VX8s/m+Mh6zU9MMVmYGmutMHODLGafYnLBDaGIzhbA
o1MwUTAdBgNVHQ4EFgQUxwyVmXdxBcMVl3MshQ54MpkHQRMwHwYDVR0jBBgwFoAU
xwyVmXdxBcMVl3MshQ54MpkHQRMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNHADBEAiBjoeoDxTl9w3pmow3C1n2hY2D/0qCWgNigEJC2ZGnahQIgBTnW2LwL
vZrva9YGYOojJGdrS0bzgdXuh5ThGaAXT5c=
-----END CERTIFICATE-----`;
const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgw/MsWS1rqLXrzPHd
Jhp5z4kszwUFKXiryhUuuPNKN/ehRANCAARH0+t6oA0LKEVzHJZ+klBxWL34DHhH
pxZXfNPcsnRbQ1VX8s/m+Mh6zU9MMVmYGmutMHODLGafYnLBDaGIzhbA
-----END PRIVATE KEY-----`;

export const mtlsExample: KindExample<'mtls'> = {
  secret: () => JSON.stringify({ certificate: CERTIFICATE, privateKey: PRIVATE_KEY }),
  blank: JSON.stringify({ certificate: CERTIFICATE, privateKey: ' ' }),
  fields: {},
  describes: 'client certificate on the connection',
};
