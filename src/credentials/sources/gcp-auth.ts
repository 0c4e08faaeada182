// A Google service account as keyway calls Google Cloud APIs with it (Secret Manager, Cloud KMS):
// the JSON key by reference or from GOOGLE_APPLICATION_CREDENTIALS, an RS256 assertion signed with it
// and exchanged at its token_uri (as google_service_account grants do), the access token kept until
// 5 minutes before it expires. Failures say why without quoting the key.
import { readFile } from 'node:fs/promises';
import { readSecretRef, type SecretRef } from '../../config/secret-ref.ts';
import type { GoogleServiceAccountMaterial } from '../material.ts';
import { parseMaterial } from '../types/index.ts';
import { googleMinter } from '../types/google_service_account/minter.ts';
import { SourceFailure } from './reader.ts';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export interface GcpServiceAccount {
  token(): Promise<string>;
  /** The key file's project_id. */
  project(): Promise<string | undefined>;
  /** A token refused: the next call mints another. */
  forget(): void;
}

export function gcpServiceAccount(credentials: SecretRef | undefined, env: NodeJS.ProcessEnv, baseDir: string, timeoutMs: number): GcpServiceAccount {
  let account: { key: GoogleServiceAccountMaterial; project: string | undefined } | undefined;
  let token: { value: string; renewAt: number } | undefined;

  const accountOf = async () => {
    if (account) return account;
    let text: string;
    if (credentials) text = readSecretRef(credentials, env, baseDir);
    else {
      const path = env['GOOGLE_APPLICATION_CREDENTIALS'];
      if (!path) throw new SourceFailure('no service account: set credentials (env:NAME or file:PATH) or GOOGLE_APPLICATION_CREDENTIALS');
      text = await readFile(path, 'utf8').catch(() => {
        throw new SourceFailure('GOOGLE_APPLICATION_CREDENTIALS names a file that cannot be read');
      });
    }
    let key: GoogleServiceAccountMaterial;
    try {
      key = parseMaterial('google_service_account', text) as GoogleServiceAccountMaterial;
    } catch (err) {
      throw new SourceFailure(`the service account key: ${(err as Error).message}`);
    }
    account = { key, project: (JSON.parse(text) as { project_id?: string }).project_id };
    return account;
  };

  return {
    async token() {
      if (token && Date.now() < token.renewAt) return token.value;
      const { key } = await accountOf();
      try {
        const minted = await googleMinter.mint({ key, scopes: [SCOPE], subject: undefined }, { now: Date.now(), timeoutMs, dispatcher: undefined });
        token = { value: minted.accessToken, renewAt: minted.expiresAt - googleMinter.mintBeforeMs };
        return token.value;
      } catch (err) {
        throw new SourceFailure(`the service account's token could not be had: ${(err as Error).message}`);
      }
    },
    async project() {
      return (await accountOf()).project;
    },
    forget() {
      token = undefined;
    },
  };
}
