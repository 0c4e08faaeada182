// doctor's look at credentials the upstream refused: a grant whose last answered request got 401
// (app/usage-recorder.ts keeps when) is named with the fix. A grant looks "active" whatever its
// upstream thinks of its secret: this is where a wrong or revoked one shows (issue 86). No line on
// a home where no upstream refused anything.

import { type GrantUsage, USAGE_PREFIX } from '../../../credentials/grant-record.ts';
import type { RecordSource } from '../../../credentials/store/credential-store.ts';
import { openServices } from '../../../open-home.ts';
import { waitingLogins, waitingLoginsCheck } from './checks-logins.ts';
import type { CheckResult, Context } from './context.ts';

/** From the store's usage records: undefined when no grant's credential was refused at its last answer. */
export function refusedCredentials(store: RecordSource): CheckResult | undefined {
  const refused = store
    .entries<GrantUsage>(USAGE_PREFIX)
    .filter(([, usage]) => typeof usage.refused_at === 'string')
    .map(([id, usage]) => `${id.slice(USAGE_PREFIX.length)} (401 at ${usage.refused_at})`);
  if (refused.length === 0) return undefined;
  return {
    check: 'credentials refused upstream',
    status: 'warn',
    detail: `the upstream refused the credential of ${refused.join(', ')} the last time it answered: a wrong secret, or one revoked there`,
    fix: 'check the secret and set it again (keyway grants show ID says how); the warning goes at the next answer the upstream accepts',
  };
}

/**
 * The store opened as a command opens it (nothing made); a store that does not open is checkStore's
 * line. With the refused credentials, the login grants that hold no login (checks-logins.ts): both
 * are a grant that looks set up and cannot serve.
 */
export async function checkRefusedCredentials(ctx: Context): Promise<CheckResult[]> {
  let services: Awaited<ReturnType<typeof openServices>>;
  try {
    services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
  } catch {
    return [];
  }
  try {
    return [refusedCredentials(services.store), waitingLoginsCheck(waitingLogins(services))].filter((r) => r !== undefined);
  } finally {
    services.store.close();
    await services.store.end?.();
  }
}
