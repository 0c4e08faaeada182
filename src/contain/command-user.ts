import { spawnSync } from 'node:child_process';

// Who a contained command is on the host. Never root: run as root, a command in a user namespace
// is still uid 0 to every file it reaches, and owns /etc, /root and /etc/shadow's reading.

export interface CommandUser {
  uid: number;
  gid: number;
  /** Its home folder (getent), where its credential files are hidden too. */
  home: string | undefined;
  /** Why this uid, for the line said at start when keyway runs as root. */
  why: string;
}

/**
 * The caller itself when it is not root. As root: the user behind sudo (SUDO_UID), else the
 * `nobody` account: an unprivileged uid that owns nothing of the user's.
 */
export function commandUser(env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0): CommandUser {
  if (uid !== 0) return { uid, gid, home: passwdEntry(String(uid))?.home, why: 'you' };
  const sudoUid = Number(env['SUDO_UID']);
  const sudoGid = Number(env['SUDO_GID']);
  if (Number.isInteger(sudoUid) && sudoUid > 0 && Number.isInteger(sudoGid) && sudoGid > 0) {
    return { uid: sudoUid, gid: sudoGid, home: passwdEntry(String(sudoUid))?.home, why: `the user behind sudo (${env['SUDO_USER'] ?? sudoUid})` };
  }
  const nobody = passwdEntry('nobody');
  return { uid: nobody?.uid ?? 65_534, gid: nobody?.gid ?? 65_534, home: undefined, why: 'nobody (keyway runs as root, not behind sudo)' };
}

function passwdEntry(key: string): { uid: number; gid: number; home: string } | undefined {
  const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8' });
  const fields = r.status === 0 ? r.stdout.trim().split('\n')[0]!.split(':') : [];
  if (fields.length < 7) return undefined;
  return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! };
}
