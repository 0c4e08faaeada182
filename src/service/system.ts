import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { KeywayError } from '../errors/index.ts';

// The system's own tools (getent, useradd, userdel, systemctl…) as `keyway service` runs them: a
// step that fails stops the command with service_failed, naming the step and its first line.

export function failed(message: string): KeywayError {
  return new KeywayError('service_failed', message);
}

export function run(program: string, args: string[]): void {
  const r = spawnSync(program, args, { encoding: 'utf8' });
  if (r.error) throw failed(`${program} ${args.join(' ')}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
  if (r.status !== 0) throw failed(`${program} ${args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? `exit ${r.status}`}`);
}

/** One entry of the passwd or group database, split on ':'; undefined when there is none. */
export function getent(database: 'passwd' | 'group', name: string): string[] | undefined {
  const r = spawnSync('getent', [database, name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0]!.split(':') : undefined;
}

/** A uid as a refusal names it: the user's name where it has one. */
export function nameOf(uid: number): string {
  const entry = getent('passwd', String(uid));
  return entry === undefined ? `uid ${uid}` : entry[0]!;
}

/** The unit's name (NAME.service) from its file's path. */
export function unitName(unitFile: string): string {
  return unitFile.slice(unitFile.lastIndexOf('/') + 1);
}

/** Whether systemd runs this machine (PID 1): only then can the unit be enabled, started and stopped. */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}
