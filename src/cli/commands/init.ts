import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { initialise } from '../../app.ts';
import { defaultConfigPath } from '../../config/index.ts';
import { EXAMPLE_CONFIG, resolveHome } from '../../paths.ts';
import { loadOrCreateAdminToken } from '../../admin/token.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';

export const init: Command = {
  name: 'init',
  usage: `keyway init [--home DIR] [--json]

Writes config/keyway.yaml (a copy of config/keyway.example.yaml) if there is none, and makes the
CA, the master key, the store and the admin token where they are missing. Never overwrites.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const configPath = args.string('config') ?? defaultConfigPath(home);
    let configCreated = false;
    if (!existsSync(configPath)) configCreated = await writeConfigCopy(configPath);
    const { services, ca } = await initialise({ home, configFile: configPath, env: io.env });
    await loadOrCreateAdminToken(services.paths.adminToken);
    const result = { home, config: configPath, config_created: configCreated, ca: ca.certPath, bundle: ca.bundlePath, store: services.paths.store };
    if (args.json) printJson(io, result);
    else io.out(`config ${configPath}${configCreated ? ' (created)' : ''}\nCA     ${ca.certPath}\nbundle ${ca.bundlePath}\nstore  ${services.paths.store}`);
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
    await writeFile(configPath, await readFile(EXAMPLE_CONFIG), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
  await chmod(configPath, 0o600);
  return true;
}
