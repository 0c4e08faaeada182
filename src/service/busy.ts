import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatListen } from '../config/listen.ts';
import { listRunningProxies } from '../running-proxy.ts';

// What keeps a service's home or user in use, found before `keyway service uninstall --purge`
// removes anything: the keyways running on the home (the records every keyway of a home writes in
// data/running, whoever runs it), and every process of the service user (userdel refuses a user
// with one, after the home would already be gone). Each is named by pid and program, never by its
// arguments (a secret command's may hold a secret). Processes of the unit's own control group are
// left out when systemd will stop them itself (`unit`).

/** A process in the way: its pid and how a refusal names it. */
export interface InTheWay {
  pid: number;
  label: string;
}

/** The keyways running on `home`, and the processes of `uid`, outside the control group of `unit` when given. */
export function inTheWay(home: string, uid: number | undefined, unit?: string): InTheWay[] {
  const found = new Map<number, InTheWay>();
  for (const proxy of listRunningProxies(join(home, 'data', 'proxy.json')).running) {
    if (unit !== undefined && inUnit(proxy.pid, unit)) continue;
    const role = proxy.role === 'contain' ? 'keyway run --contain' : 'keyway start';
    found.set(proxy.pid, { pid: proxy.pid, label: `pid ${proxy.pid} (${role} on this home, proxy ${formatListen(proxy.proxy)})` });
  }
  if (uid !== undefined) {
    for (const pid of processesOf(uid)) {
      if (found.has(pid) || (unit !== undefined && inUnit(pid, unit))) continue;
      found.set(pid, { pid, label: `pid ${pid} (${program(pid)}, as the service user)` });
    }
  }
  return [...found.values()].sort((a, b) => a.pid - b.pid);
}

/** The pids whose real, effective or saved uid is `uid` (what userdel counts as the user's). */
export function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const line = read(join('/proc', name, 'status'))
      ?.split('\n')
      .find((l) => l.startsWith('Uid:'));
    const uids = line?.slice('Uid:'.length).trim().split(/\s+/).slice(0, 3).map(Number) ?? [];
    if (uids.includes(uid)) pids.push(Number(name));
  }
  return pids;
}

function inUnit(pid: number, unit: string): boolean {
  const cgroups = read(`/proc/${pid}/cgroup`) ?? '';
  return cgroups.split('\n').some((line) => line.endsWith(`/${unit}`) || line.includes(`/${unit}/`));
}

function program(pid: number): string {
  return read(`/proc/${pid}/comm`)?.trim() || 'gone';
}

/** A /proc file, or undefined when the process is gone meanwhile. */
function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
