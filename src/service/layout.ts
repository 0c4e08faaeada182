import { join, resolve } from 'node:path';

// `keyway service`: keyway as a system user of its own, so that an agent running as the person's
// user cannot read its home (the master key, the store, the CA key, the audit log). What goes
// where:
//   home   (default /var/lib/keyway): mode 0700, the service user's alone.
//   share  (default /etc/keyway): what others may read. ca.pem, bundle.pem and proxy.env (the
//          proxy URL and CA variables) for agents; admin.token (0640, the operators' group) for
//          the operators' CLI; service.json (where the service listens) for `keyway service status`.
//   unit   (default /etc/systemd/system/NAME.service): the systemd unit that runs `keyway start`.
//   install-dir (default /usr/local/lib/keyway): the copy of keyway the unit runs, root's alone.

export interface ServiceLayout {
  /** The system user and group keyway runs as. */
  user: string;
  /** The group whose members may read the admin token (operators). */
  operators: string;
  home: string;
  share: string;
  unitFile: string;
  /** Where the copy of keyway the unit runs is installed (root's alone; service/installed-copy.ts). */
  installDir: string;
}

export const DEFAULTS = {
  user: 'keyway',
  home: '/var/lib/keyway',
  share: '/etc/keyway',
  unitDir: '/etc/systemd/system',
  installDir: '/usr/local/lib/keyway',
} as const;

export function serviceLayout(options: {
  user?: string | undefined;
  home?: string | undefined;
  share?: string | undefined;
  unitDir?: string | undefined;
  installDir?: string | undefined;
}): ServiceLayout {
  const user = options.user ?? DEFAULTS.user;
  return {
    user,
    operators: `${user}-operators`,
    home: resolve(options.home ?? DEFAULTS.home),
    share: resolve(options.share ?? DEFAULTS.share),
    unitFile: join(resolve(options.unitDir ?? DEFAULTS.unitDir), `${user}.service`),
    installDir: resolve(options.installDir ?? DEFAULTS.installDir),
  };
}

/** What `keyway service install` writes in share/service.json: how the operators' CLI finds the service. */
export interface ServiceRecord {
  user: string;
  home: string;
  unit: string;
  proxy: { host: string; port: number };
  admin: { host: string; port: number } | null;
}

export const SHARED = { ca: 'ca.pem', bundle: 'bundle.pem', env: 'proxy.env', adminToken: 'admin.token', record: 'service.json' } as const;

/** The comment of the user `keyway service install` makes: `uninstall --purge` removes only such a user. */
export const USER_COMMENT = 'keyway proxy';

/** A system user's name as useradd takes it: lower case, digits, '-' and '_', starting with a letter. */
export function validUserName(name: string): boolean {
  return /^[a-z_][a-z0-9_-]{0,30}$/.test(name);
}
