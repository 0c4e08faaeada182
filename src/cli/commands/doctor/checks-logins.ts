// doctor's look at login grants that hold no login: a `keyway connect AGENT --login` cut short (at
// the agent's prompt, offline, Ctrl-C) leaves its login_capture grant so (issue 86). Named with what
// fills it; no line where every login grant holds one.

import { type GrantListing, listGrants } from '../../../credentials/grant-listing.ts';
import type { RecordSource } from '../../../credentials/store/credential-store.ts';
import type { Config } from '../../../config/index.ts';
import { openServices } from '../../../open-home.ts';
import type { CheckResult, Context } from './context.ts';

/** The grants waiting for a login, each with its status line (`waiting for login: run …`). */
export function waitingLogins(services: { config: Config; store: RecordSource }): GrantListing[] {
  return listGrants(services).filter((g) => g.display_status === 'waiting_for_login');
}

/** One warning naming each grant that waits, and what fills it; undefined when none waits. */
export function waitingLoginsCheck(waiting: readonly GrantListing[]): CheckResult | undefined {
  if (waiting.length === 0) return undefined;
  return {
    check: 'login grants',
    status: 'warn',
    detail: waiting.map((g) => `grant ${g.id} holds no login yet (${g.status_detail})`).join('; '),
    fix: waiting.length === 1 ? waiting[0]!.status_detail.replace(/^waiting for login: (run )?/, '') : 'as each says',
  };
}

/** The ids of the grants waiting for a login, from the store opened as a command opens it; none when it does not open. */
export async function waitingLoginIds(ctx: Context): Promise<Map<string, string>> {
  let services: Awaited<ReturnType<typeof openServices>>;
  try {
    services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
  } catch {
    return new Map();
  }
  try {
    return new Map(waitingLogins(services).map((g) => [g.id, g.status_detail]));
  } finally {
    services.store.close();
    await services.store.end?.();
  }
}
