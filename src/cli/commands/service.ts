import { join } from 'node:path';
import { readAdminToken } from '../../admin/token.ts';
import { KeywayError } from '../../errors/index.ts';
import { addOperator, enableAndStart, ensureAccounts, keywayCommand, makeHome, readServiceRecord, writeShare, writeUnit } from '../../service/install.ts';
import { refuseAnotherService } from '../../service/others.ts';
import { systemdRunning } from '../../service/system.ts';
import { uninstall } from '../../service/uninstall.ts';
import { DEFAULTS, serviceLayout, SHARED } from '../../service/layout.ts';
import { parse } from '../args.ts';
import { clientEnvironment } from '../client-env.ts';
import type { Command } from '../command.ts';
import { type CommandIO, printJson, usageError } from '../io.ts';
import { reachable } from '../proxy-url.ts';
import { callAdmin, type LiveStatus } from '../running-status.ts';

export const service: Command = {
  name: 'service',
  usage: `keyway service install [--user NAME] [--home DIR] [--share DIR] [--install-dir DIR] [--operator USER] [--no-start]
keyway service status [--share DIR] [--json]
keyway service uninstall [--user NAME] [--home DIR] [--share DIR] [--purge]

Runs keyway as a system user of its own (Linux, systemd), so that an agent running as you cannot
read its home: the master key, the store, the CA key, the audit log. As root, install makes the user
NAME (default ${DEFAULTS.user}) and the group NAME-operators, a home only NAME can read (default
${DEFAULTS.home}, mode 0700, made by \`keyway init\` as NAME), and in --share (default ${DEFAULTS.share})
what others may read: ca.pem, bundle.pem and proxy.env for agents (\`. ${DEFAULTS.share}/proxy.env\`:
the proxy URL and the CA variables, nothing else), admin.token for the operators' group (0640; --operator
USER, default the user behind sudo, joins it). It writes the unit /etc/systemd/system/NAME.service and,
where systemd runs, enables and starts it (not with --no-start). The unit runs a copy of keyway that
no user but root can change, installed in --install-dir (default ${DEFAULTS.installDir}: dist/, the
production node_modules, and the node binary unless it is root's already); a folder on the way
another user could write is refused, named. Run again, it keeps what exists and
rewrites what is derived; a share or home that is another service's is refused, nothing changed.
Manage grants as the service user: sudo -u NAME keyway --home DIR grants add ….
\`service status\` asks the running service's admin API (an operator's command: it reads admin.token).
\`service uninstall\` stops and removes the unit and the share; --purge removes the home, user, group and the copy,
all or nothing: refused, naming what runs, while a keyway runs on the home or a process as the user.`,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        user: { type: 'string' },
        share: { type: 'string' },
        operator: { type: 'string' },
        'unit-dir': { type: 'string' },
        'install-dir': { type: 'string' },
        'no-start': { type: 'boolean' },
        purge: { type: 'boolean' },
      },
      { install: 0, status: 0, uninstall: 0 },
    );
    const [action, extra] = args.positionals;
    if (extra !== undefined || (action !== 'install' && action !== 'status' && action !== 'uninstall')) {
      throw usageError('usage: keyway service install | status | uninstall (keyway service --help)');
    }
    const layout = serviceLayout({
      user: args.string('user'),
      home: args.string('home'),
      share: args.string('share'),
      unitDir: args.string('unit-dir'),
      installDir: args.string('install-dir'),
    });
    if (action === 'status') return status(layout.share, args.json, io);
    if (process.platform !== 'linux') {
      throw usageError(
        `keyway service is for Linux with systemd; on macOS run keyway as its own user with a LaunchDaemon (docs/containment.md, "keyway as its own user")`,
      );
    }
    if (process.getuid?.() !== 0) throw usageError(`keyway service ${action} makes and removes a system user: run it as root (sudo keyway service ${action})`);
    if (action === 'uninstall') {
      const done = uninstall(layout, args.flag('purge'));
      if (args.json) printJson(io, { removed: done });
      else io.out(done.length === 0 ? 'nothing of a keyway service was there' : done.join('\n'));
      return 0;
    }
    refuseAnotherService(layout);
    const account = ensureAccounts(layout);
    const operator = args.string('operator') ?? io.env['SUDO_USER'];
    if (operator !== undefined && operator !== 'root') addOperator(layout, operator);
    const cli = keywayCommand(layout);
    makeHome(layout, account, cli);
    const record = writeShare(layout, account, (config, files) => clientEnvironment(config, undefined, undefined, files));
    writeUnit(layout, cli);
    const start = !args.flag('no-start') && systemdRunning();
    if (start) enableAndStart(layout);
    if (args.json) {
      printJson(io, { ...record, share: layout.share, operators: layout.operators, operator: operator ?? null, started: start });
      return 0;
    }
    io.out(
      [
        `keyway runs as ${layout.user} (uid ${account.uid}); its home ${layout.home} is that user's alone (0700)`,
        `unit: ${layout.unitFile}${start ? ' (enabled and started)' : systemdRunning() ? ' (not started: --no-start)' : " (systemd is not running here: start it with the unit's ExecStart as that user)"}`,
        `agents: . ${join(layout.share, SHARED.env)}   (the proxy ${reachable(record.proxy)} and the CA, nothing else)`,
        `operators: members of ${layout.operators}${operator !== undefined && operator !== 'root' ? ` (${operator} added; log in again to take it)` : ''} read ${join(layout.share, SHARED.adminToken)}: keyway service status`,
        `grants: sudo -u ${layout.user} keyway --home ${layout.home} grants add …`,
      ].join('\n'),
    );
    return 0;
  },
};

async function status(share: string, json: boolean, io: CommandIO): Promise<number> {
  const record = readServiceRecord(share);
  if (record.admin === null) throw new KeywayError('usage', `the keyway service in ${share} has its admin API off (admin.enabled: false): nothing to ask`);
  let token: string;
  try {
    token = await readAdminToken(join(share, SHARED.adminToken), {});
  } catch (err) {
    throw new KeywayError(
      'usage',
      `cannot read ${join(share, SHARED.adminToken)} (${(err as NodeJS.ErrnoException).code ?? 'error'}): keyway service status is for the ${record.user}-operators group`,
    );
  }
  let live: LiveStatus;
  try {
    const answer = await callAdmin(record.admin, token, 'GET', '/api/status');
    if (answer.status !== 200) throw new Error(`status ${answer.status}`);
    live = answer.body as LiveStatus;
  } catch (err) {
    if (json) printJson(io, { running: false, ...record, why: (err as Error).message });
    else io.out(`keyway service (${record.user}) is not answering at ${reachable(record.admin)}: ${(err as Error).message}`);
    return 1;
  }
  if (json) printJson(io, { running: true, ...record, ...live });
  else
    io.out(
      `keyway service (${record.user}) is running: pid ${live.pid}, proxy ${reachable(record.proxy)}, ${live.grants} grants, ${live.agents} agents, ${live.requests} requests, audit ${live.audit}`,
    );
  return 0;
}
