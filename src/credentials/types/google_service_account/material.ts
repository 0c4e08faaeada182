// The google_service_account type's secret, as `keyway secrets set` takes it and the store keeps it.

/** A Google service account's JSON key (google_service_account): keyway signs assertions with it, never sends it. */
export interface GoogleServiceAccountMaterial {
  clientEmail: string;
  privateKey: string;
  privateKeyId?: string | undefined;
  tokenUri: string;
}
