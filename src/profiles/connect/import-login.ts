// `keyway connect AGENT --import`: a subscription login made before keyway, taken over. The real
// tokens in the agent's credential file become captured tokens of the agent's login_capture grant,
// exactly as a login through keyway leaves them (one record per placeholder, sealed in the store,
// capture/store/records.ts), and the file gets the placeholders. From then on the agent's
// refreshes go through keyway with the placeholder, as after `--login`.

import { randomBytes } from 'node:crypto';
import { capturedRecordId, jwtExpiry, makePlaceholder } from '../../capture/core/placeholder.ts';
import type { CapturedToken } from '../../capture/core/captured.ts';
import type { CredentialStore } from '../../credentials/store/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { type CredentialFile, rewriteCredentialFile, withPlaceholders } from './credential-file.ts';
import type { CapturedLogin } from './targets.ts';

export interface ImportTarget {
  readonly grant: string;
  /** The keyway agent whose login it becomes (its placeholders resolve for it alone). */
  readonly agent: string;
  readonly login: CapturedLogin;
}

/** What an import did: the fields now held by keyway (names only). */
export interface Imported {
  readonly fields: string[];
  readonly file: string;
}

/**
 * Stores the file's tokens under the grant and rewrites the file with placeholders. The store first:
 * a file rewritten before the store held the tokens would lose the login if the write failed. A
 * rewrite that fails takes the records out again, and the file is as it was.
 */
export async function importLogin(store: Pick<CredentialStore, 'update'>, file: CredentialFile, target: ImportTarget, now = Date.now()): Promise<Imported> {
  const login = randomBytes(6).toString('hex');
  const endpoint = target.login.endpoints[0]!;
  const records: Array<[string, CapturedToken]> = [];
  const placeholders = new Map<string, string>();
  for (const token of file.tokens) {
    if (placeholders.has(token.value)) continue;
    const placeholder = makePlaceholder(token.value);
    placeholders.set(token.value, placeholder.text);
    const expiry = jwtExpiry(token.value) ?? (token.field === 'access_token' ? file.expiresAt : undefined);
    records.push([
      placeholder.key,
      {
        grant: target.grant,
        agent: target.agent,
        field: token.field,
        value: token.value,
        prefix: placeholder.prefix,
        login,
        endpoint: `${endpoint.host}${endpoint.path}`,
        captured_at: new Date(now).toISOString(),
        expires_at: expiry === undefined ? undefined : new Date(expiry).toISOString(),
      },
    ]);
  }
  const text = withPlaceholders(file, placeholders);
  await store.update((draft) => {
    for (const [key, record] of records) draft.set(capturedRecordId(key), record);
  });
  try {
    await rewriteCredentialFile(file, text);
  } catch (err) {
    await store.update((draft) => {
      for (const [key] of records) draft.delete(capturedRecordId(key));
    });
    throw new KeywayError(
      'usage',
      `cannot rewrite ${file.path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): nothing was imported, the file is as it was`,
    );
  }
  return { fields: [...new Set(records.map(([, r]) => r.field))], file: file.path };
}
