import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { loadConfig } from '../config/load.ts';
import { KeywayError } from '../errors/index.ts';
import { type ServiceLayout, type ServiceRecord, SHARED, USER_COMMENT, validUserName } from './layout.ts';
import { installCopy, installExecutableCopy, packageRoot } from './installed-copy.ts';
import { inSingleExecutable } from '../process/own-program.ts';
import { failed, getent, run, unitName } from './system.ts';
import { systemdUnit } from './unit.ts';

// The steps of `keyway service install` and `uninstall`, each one the system's own tool (useradd,
// groupadd, systemctl) run as root. Install can be run again: what exists is kept, what is derived
// (the shared CA and variables, the unit) is written anew. Uninstall is in uninstall.ts.

export interface Account {
  uid: number;
  gid: number;
}

/** The service user and the operators' group, made where missing. */
export function ensureAccounts(layout: ServiceLayout): Account {
  if (!validUserName(layout.user)) throw new KeywayError('usage', `--user ${layout.user}: a system user name (lower case letters, digits, - and _)`);
  if (getent('group', layout.operators) === undefined) run('groupadd', ['--system', layout.operators]);
  if (getent('passwd', layout.user) === undefined) {
    run('useradd', [
      '--system',
      '--user-group',
      '--home-dir',
      layout.home,
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      USER_COMMENT,
      layout.user,
    ]);
  }
  const entry = getent('passwd', layout.user)!;
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** Adds a person to the operators' group (they may read the admin token); said, never silent. */
export function addOperator(layout: ServiceLayout, person: string): void {
  if (getent('passwd', person) === undefined) throw new KeywayError('usage', `--operator ${person}: no such user`);
  run('usermod', ['--append', '--groups', layout.operators, person]);
}

/**
 * The home, the service user's alone (0700, every file its own), with what `keyway init` makes,
 * made by the service user itself: it proves that user can run this node and this keyway.
 */
export function makeHome(layout: ServiceLayout, account: Account, cli: readonly string[]): void {
  mkdirSync(layout.home, { recursive: true });
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, layout.home]);
  chmodSync(layout.home, 0o700);
  const init = spawnSync(cli[0]!, [...cli.slice(1), 'init', '--home', layout.home], {
    uid: account.uid,
    gid: account.gid,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: layout.home, KEYWAY_HOME: layout.home },
    encoding: 'utf8',
  });
  if (init.status !== 0) {
    const why = (init.stderr || init.stdout || String(init.error?.message ?? '')).trim().split('\n')[0];
    throw failed(
      `\`keyway init\` as ${layout.user} failed: ${why}. The service user must be able to run ${cli[0]} and read ${cli[1]}: install keyway where every user can (npm install -g, as root)`,
    );
  }
}

/**
 * What others may read, in the share folder: the CA and the proxy variables for agents, the admin
 * token for the operators' group (0640), where the service listens for `keyway service status`.
 */
export function writeShare(
  layout: ServiceLayout,
  account: Account,
  clientEnvironment: (config: Config, files: { ca: string; bundle: string }) => Record<string, string>,
): ServiceRecord {
  mkdirSync(layout.share, { recursive: true });
  chmodSync(layout.share, 0o755);
  const certs = join(layout.home, 'certs');
  for (const name of [SHARED.ca, SHARED.bundle]) {
    copyFileSync(join(certs, name), join(layout.share, name));
    chownSync(join(layout.share, name), 0, 0);
    chmodSync(join(layout.share, name), 0o644);
  }
  const token = join(layout.share, SHARED.adminToken);
  copyFileSync(join(layout.home, 'data', 'admin.token'), token);
  const operators = Number(getent('group', layout.operators)![2]);
  chownSync(token, account.uid, operators);
  chmodSync(token, 0o640);
  const config = loadConfig({ home: layout.home });
  const vars = clientEnvironment(config, { ca: join(layout.share, SHARED.ca), bundle: join(layout.share, SHARED.bundle) });
  const lines = Object.entries(vars).map(([name, value]) => `export ${name}='${value.replaceAll("'", "'\\''")}'`);
  writeFileSync(join(layout.share, SHARED.env), `# keyway's proxy and CA, for agents: . ${join(layout.share, SHARED.env)}\n${lines.join('\n')}\n`, {
    mode: 0o644,
  });
  const record: ServiceRecord = {
    user: layout.user,
    home: layout.home,
    unit: layout.unitFile,
    proxy: config.proxy.listen,
    admin: config.admin.enabled ? config.admin.listen : null,
  };
  writeFileSync(join(layout.share, SHARED.record), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  return record;
}

/** This keyway, as the service runs it: a copy of it no user but root can change (service/installed-copy.ts). */
export function keywayCommand(layout: ServiceLayout): string[] {
  try {
    // The single executable is one file: it is what is copied (process/own-program.ts).
    return inSingleExecutable() ? installExecutableCopy(layout.installDir) : installCopy(packageRoot(), layout.installDir);
  } catch (err) {
    throw failed(`installing keyway into ${layout.installDir}: ${(err as Error).message}`);
  }
}

export function writeUnit(layout: ServiceLayout, cli: readonly string[]): void {
  mkdirSync(join(layout.unitFile, '..'), { recursive: true });
  writeFileSync(layout.unitFile, systemdUnit(layout, [...cli, 'start']), { mode: 0o644 });
}

export function enableAndStart(layout: ServiceLayout): void {
  const unit = unitName(layout.unitFile);
  run('systemctl', ['daemon-reload']);
  run('systemctl', ['enable', '--now', unit]);
}

export function readServiceRecord(share: string): ServiceRecord {
  const file = join(share, SHARED.record);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ServiceRecord;
  } catch (err) {
    throw new KeywayError(
      'usage',
      `no keyway service recorded in ${share} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}): \`sudo keyway service install\` makes one`,
    );
  }
}
