// The hmac type's secret, as `keyway secrets set` takes it and the store keeps it.

/** An HMAC key (hmac): keyway signs with it, never sends it; the key id and passphrase go where the scheme says. */
export interface HmacKeyMaterial {
  key: string;
  keyId?: string | undefined;
  passphrase?: string | undefined;
}
