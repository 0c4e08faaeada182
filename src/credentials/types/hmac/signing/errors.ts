// Why a request could not be signed. The proxy turns this into its ProxyError with the same code
// (signature_unsupported joins codes.ts with the request-path wiring); the message is keyway's own
// and never quotes the key, the passphrase or the body.

export type HmacSignErrorCode = 'signature_unsupported' | 'grant_no_secret';

export class HmacSignError extends Error {
  readonly code: HmacSignErrorCode;

  constructor(code: HmacSignErrorCode, message: string) {
    super(message);
    this.name = 'HmacSignError';
    this.code = code;
  }
}
