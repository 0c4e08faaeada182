import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inTheWay } from './busy.ts';
import { shareRecordProblem } from './others.ts';
import { type ServiceLayout, USER_COMMENT } from './layout.ts';
import { failed, getent, nameOf, run, systemdRunning, unitName } from './system.ts';
import { unitCommand } from './unit.ts';

// `keyway service uninstall`: the unit (stopped first where systemd runs) and the share (never a
// share whose service.json names another service: refused, nothing removed); with --purge, the
// copy of keyway (kept while another unit beside this one runs it), the home, the user and the
// group too. A purge is all or nothing:
// whatever could make it stop half way is checked before the first thing is removed, and any of it
// refuses the whole purge, named. What a purge admits:
//   - nothing runs on the home or as the service user (a keyway, a secret command, a shell): the
//     unit's own processes only where systemd runs and will stop them;
//   - the user is the one install made for this home (its passwd home is --home, its comment
//     "keyway proxy") and a local one (in /etc/passwd, where userdel can remove it);
//   - the operators' group is no user's primary group (groupdel refuses one);
//   - the home, if there, is a keyway's (data/ or config/ in it) and the service user's (or root's,
//     or a uid no user has any more), never another user's.
// The same checks run again once systemd has stopped the unit, before anything is removed.

export function uninstall(layout: ServiceLayout, purge: boolean): string[] {
  const unit = unitName(layout.unitFile);
  const systemd = systemdRunning();
  const anothers = shareRecordProblem(layout, (r) => `not ${layout.user}'s (home ${layout.home}): to remove that one, pass --user ${r.user} --home ${r.home}`);
  if (anothers !== undefined) throw failed(`keyway service uninstall refused, nothing removed: ${anothers}`);
  if (purge) refuseUnlessPurgeable(layout, systemd && existsSync(layout.unitFile) ? unit : undefined, 'nothing removed');
  const done: string[] = [];
  if (existsSync(layout.unitFile)) {
    if (systemd) {
      spawnSync('systemctl', ['disable', '--now', unit], { stdio: 'ignore' });
      done.push(`stopped and disabled ${unit}`);
      if (purge) refuseUnlessPurgeable(layout, undefined, `${unit} is stopped and disabled, nothing removed`);
    }
    rmSync(layout.unitFile, { force: true });
    if (systemd) spawnSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
    done.push(`removed ${layout.unitFile}`);
  }
  if (existsSync(layout.share)) {
    rmSync(layout.share, { recursive: true, force: true });
    done.push(`removed ${layout.share}`);
  }
  if (!purge) return done;
  const sharing = unitsRunning(layout.installDir, layout.unitFile);
  if (sharing.length > 0) {
    done.push(`kept ${layout.installDir}: ${sharing.join(', ')} runs it too`);
  } else if (existsSync(layout.installDir)) {
    rmSync(layout.installDir, { recursive: true, force: true });
    done.push(`removed ${layout.installDir} (the copy of keyway the service ran)`);
  }
  if (existsSync(layout.home) && statSync(layout.home).isDirectory()) {
    rmSync(layout.home, { recursive: true, force: true });
    done.push(`removed ${layout.home} (the store, the CA, the audit log)`);
  }
  if (getent('passwd', layout.user) !== undefined) {
    run('userdel', [layout.user]);
    done.push(`removed the user ${layout.user}`);
  }
  if (getent('group', layout.operators) !== undefined) {
    run('groupdel', [layout.operators]);
    done.push(`removed the group ${layout.operators}`);
  }
  return done;
}

/**
 * The other units beside this one whose ExecStart runs something in `installDir`: another service
 * installed with the same --install-dir (the default is one folder), whose copy a purge must keep.
 */
function unitsRunning(installDir: string, unitFile: string): string[] {
  const folder = dirname(unitFile);
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.endsWith('.service') && join(folder, name) !== unitFile);
  } catch {
    return [];
  }
  return names.filter((name) => {
    try {
      return unitCommand(readFileSync(join(folder, name), 'utf8')).command.some((word) => word.startsWith(`${installDir}/`));
    } catch {
      return false;
    }
  });
}

/** Refuses the purge, naming every reason at once, when any step of it could not be done. */
function refuseUnlessPurgeable(layout: ServiceLayout, unitToStop: string | undefined, state: string): void {
  const problems = purgeProblems(layout, unitToStop);
  if (problems.length > 0) throw failed(`keyway service uninstall --purge refused, ${state}: ${problems.join('; ')}`);
}

export function purgeProblems(layout: ServiceLayout, unitToStop: string | undefined): string[] {
  const problems: string[] = [];
  const user = getent('passwd', layout.user);
  if (user !== undefined) {
    const [, , , , comment, home] = user;
    if (home !== layout.home) {
      problems.push(`the user ${layout.user}'s home is ${home}, not ${layout.home}: pass the --home it was installed with`);
    } else if (comment !== USER_COMMENT) {
      problems.push(
        `the user ${layout.user} was not made by keyway service install (its comment is "${comment}"): remove it yourself, or uninstall without --purge`,
      );
    }
    if (!localUser(layout.user)) problems.push(`the user ${layout.user} is not in /etc/passwd (a directory service's): userdel cannot remove it`);
  }
  const group = getent('group', layout.operators);
  if (group !== undefined) {
    const members = primaryMembers(Number(group[2]));
    if (members.length > 0) problems.push(`the group ${layout.operators} is the primary group of ${members.join(', ')}: groupdel would refuse`);
  }
  const serviceUid = user === undefined ? undefined : Number(user[2]);
  if (existsSync(layout.home)) {
    const stat = statSync(layout.home);
    const isHome = stat.isDirectory() && ['data', 'config'].some((name) => existsSync(join(layout.home, name)));
    if (!isHome || layout.home === '/') {
      problems.push(`${layout.home} is not a keyway home (no data/ or config/ in it): --purge removes only the service's home`);
    } else if (!serviceMayOwn(stat.uid, serviceUid)) {
      problems.push(`${layout.home} belongs to ${nameOf(stat.uid)}, not ${layout.user}: --purge removes only the service's own home`);
    }
  }
  const running = inTheWay(layout.home, serviceUid, unitToStop);
  if (running.length > 0) {
    const stop = unitToStop === undefined ? 'stop them' : `stop them (systemctl stops only ${unitToStop})`;
    problems.push(
      `still running: ${running.map((p) => p.label).join(', ')}; ${stop} and run it again (userdel refuses a user that runs, and the home must not go while a keyway uses it)`,
    );
  }
  return problems;
}

/**
 * Whether a home owned by `owner` can be the service's: its user's, root's (made before install
 * handed it over), or, with the user gone, a uid no user has any more (the removed service user's).
 */
function serviceMayOwn(owner: number, serviceUid: number | undefined): boolean {
  if (owner === 0 || owner === serviceUid) return true;
  return serviceUid === undefined && getent('passwd', String(owner)) === undefined;
}

function localUser(name: string): boolean {
  try {
    return readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((line) => line.startsWith(`${name}:`));
  } catch {
    return false;
  }
}

/** The users whose primary group is `gid`. */
function primaryMembers(gid: number): string[] {
  const r = spawnSync('getent', ['passwd'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields.length > 3 && Number(fields[3]) === gid)
    .map((fields) => fields[0]!);
}
