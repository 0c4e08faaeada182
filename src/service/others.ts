import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type ServiceLayout, type ServiceRecord, SHARED } from './layout.ts';
import { failed, getent, nameOf } from './system.ts';

// A second `keyway service install` must not take over what a first one made: the share holds one
// service's CA, proxy variables and admin token, and the home one service's store and keys. Install
// rewrites the share and hands the home to its user, so before it changes anything it refuses a
// share or a home that is another service's. What it admits: a share with no service.json nor
// admin.token (a new one), or one whose service.json names this user and this home and whose
// admin.token is this user's; a home that does not exist yet, or that is root's (made by hand
// before install, as a config written ahead is) or this user's. Everything else is another's.

export function refuseAnotherService(layout: ServiceLayout): void {
  const problems = [...shareProblems(layout), ...homeProblems(layout)];
  if (problems.length > 0) throw failed(`keyway service install refused, nothing changed: ${problems.join('; ')}`);
}

function shareProblems(layout: ServiceLayout): string[] {
  const uninstallFirst = (user: string, home?: string) =>
    `a second service needs a --share of its own (and a --home); to replace it, \`keyway service uninstall --user ${user}${home === undefined ? '' : ` --home ${home}`} --share ${layout.share}\` first`;
  const recorded = shareRecordProblem(layout, (record) => `whose CA and admin token install would overwrite: ${uninstallFirst(record.user, record.home)}`);
  if (recorded !== undefined) return [recorded];
  const token = join(layout.share, SHARED.adminToken);
  if (existsSync(token)) {
    const owner = statSync(token).uid;
    if (owner !== uidOf(layout.user)) {
      return [
        `${token} belongs to ${nameOf(owner)}, not ${layout.user}: ${layout.share} holds another service's admin token; ${uninstallFirst(nameOf(owner))}`,
      ];
    }
  }
  return [];
}

/**
 * Why the share's service.json says it is not this service's (another user or home, or unreadable);
 * undefined when it names this one or is not there. `hint` ends the reason: what to do instead.
 */
export function shareRecordProblem(layout: ServiceLayout, hint: (record: ServiceRecord) => string): string | undefined {
  const file = join(layout.share, SHARED.record);
  if (!existsSync(file)) return undefined;
  let record: ServiceRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as ServiceRecord;
  } catch (err) {
    return `${file} is unreadable (${(err as NodeJS.ErrnoException).code ?? 'not JSON'}): cannot tell whose service ${layout.share} holds`;
  }
  if (record.user === layout.user && record.home === layout.home) return undefined;
  return `${layout.share} holds the keyway service of ${record.user} (home ${record.home}), ${hint(record)}`;
}

function homeProblems(layout: ServiceLayout): string[] {
  if (!existsSync(layout.home)) return [];
  const owner = statSync(layout.home).uid;
  if (owner === 0 || owner === uidOf(layout.user)) return [];
  return [`${layout.home} belongs to ${nameOf(owner)}, not ${layout.user}: it is another user's home (a second service needs a --home of its own)`];
}

function uidOf(user: string): number | undefined {
  const entry = getent('passwd', user);
  return entry === undefined ? undefined : Number(entry[2]);
}
