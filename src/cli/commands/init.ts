import { copyFile, mkdir } from 'node:fs/promises';
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
    if (!existsSync(configPath)) {
      await mkdir(dirname(configPath), { recursive: true });
      await copyFile(EXAMPLE_CONFIG, configPath);
      configCreated = true;
    }
    const { services, ca } = await initialise({ home, configFile: configPath, env: io.env });
    await loadOrCreateAdminToken(services.paths.adminToken);
    const result = { home, config: configPath, config_created: configCreated, ca: ca.certPath, bundle: ca.bundlePath, store: services.paths.store };
    if (args.json) printJson(io, result);
    else io.out(`config ${configPath}${configCreated ? ' (created)' : ''}\nCA     ${ca.certPath}\nbundle ${ca.bundlePath}\nstore  ${services.paths.store}`);
    return 0;
  },
};
