import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { initialise } from '../../app/index.ts';
import { defaultConfigPath } from '../../config/index.ts';
import { exampleConfigText, resolveHome } from '../../paths.ts';
import { loadOrCreateAdminToken } from '../../admin/token.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';
import { findRunningProxy } from '../../running-proxy.ts';

/** What a new user runs after init, in order, each with why. */
const NEXT_STEPS: ReadonlyArray<readonly [string, string]> = [
  ['keyway start', 'runs the proxy; leave it running (`keyway status`, `keyway stop` from any folder)'],
  ['keyway grants add github --type bearer --domains api.github.com', 'says which hosts get which credential'],
  [`printf '%s' "$GITHUB_TOKEN" | keyway secrets set github --stdin`, 'stores its secret (or: keyway connect google, for OAuth)'],
  ['keyway run -- curl https://api.github.com/user', 'runs a program through keyway (or: eval "$(keyway env)")'],
  ['keyway doctor', 'checks that curl, node, python and git go through it'],
];

export const init: Command = {
  name: 'init',
  usage: `keyway init [--home DIR] [--json]

Writes config/keyway.yaml (a copy of config/keyway.example.yaml) if there is none, and makes the
CA, the master key, the store, the admin token and the audit log's folder (logs/) where they are
missing. Never overwrites.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const configPath = args.string('config') ?? defaultConfigPath(home);
    let configCreated = false;
    if (!existsSync(configPath)) configCreated = await writeConfigCopy(configPath);
    const { services, ca } = await initialise({ home, configFile: configPath, env: io.env });
    await loadOrCreateAdminToken(services.paths.adminToken, io.env);
    // The audit log's folder, like data/ (0700): made now so the layout a user reads about after
    // init is the one on disk, not one that appears at the first request.
    const logs = dirname(services.paths.audit);
    await mkdir(logs, { recursive: true, mode: 0o700 });
    // The steps that are still to do: a keyway already running for this home needs no `keyway start`.
    const running = findRunningProxy(services.paths.runningProxy);
    const steps = running ? NEXT_STEPS.filter(([command]) => command !== 'keyway start') : NEXT_STEPS;
    const result = {
      home,
      config: configPath,
      config_created: configCreated,
      ca: ca.certPath,
      bundle: ca.bundlePath,
      store: services.paths.store,
      logs,
      next: steps.map(([command]) => command),
    };
    if (args.json) printJson(io, result);
    else {
      io.out(
        `home   ${home}\nconfig ${configPath}${configCreated ? ' (created)' : ''}\nCA     ${ca.certPath}\nbundle ${ca.bundlePath}\nstore  ${services.paths.store}\nlogs   ${logs}`,
      );
      const already = running ? [`keyway is already running for this home (pid ${running.pid}); it takes CLI changes within a second.`] : [];
      io.out(['', ...already, 'Next steps:', ...steps.flatMap(([command, why], i) => [`  ${i + 1}. ${command}`, `     ${why}`])].join('\n'));
    }
    return 0;
  },
};

/**
 * The example config, copied with modes that do not depend on the umask: the folder 0700 like data/
 * (it may come to hold file: references next to the config), the file 0600. Written with O_EXCL and
 * its final mode from the start, so there is no moment where it is readable by others, and a config
 * someone wrote meanwhile is never replaced.
 */
async function writeConfigCopy(configPath: string): Promise<boolean> {
  const dir = dirname(configPath);
  const made = await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by the umask; chmod sets it exactly. Only a folder we just made is changed.
  if (made !== undefined) await chmod(dir, 0o700);
  try {
    await writeFile(configPath, exampleConfigText(), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
  await chmod(configPath, 0o600);
  return true;
}
