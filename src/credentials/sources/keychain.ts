// keychain: a secret kept in the desktop's Secret Service (GNOME Keyring, KWallet, KeePassXC),
// looked up by its attributes with libsecret's own `secret-tool lookup` (run without a shell, in the
// process group and time bounds of secret commands), in the D-Bus session keyway runs in. The item
// is named by attributes, `service=github account=robot` (space- or comma-separated), or
// `SERVICE/ACCOUNT` for the service/account pair keytar and most CLIs store under. macOS's Keychain
// is not read here (nothing on these machines can test it): a secret command does it,
// `{cmd: [security, find-generic-password, -s, SERVICE, -a, ACCOUNT, -w]}`.
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';
import { CommandFailed, runCommand } from '../providers/cmd-run.ts';
import { pickField, SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'keychain' }>;

/** What secret-tool is given of keyway's environment. */
const LOOKUP_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'DBUS_SESSION_BUS_ADDRESS', 'XDG_RUNTIME_DIR'];

/** The lookup's attributes: NAME=VALUE pairs, or SERVICE/ACCOUNT. */
export function keychainAttributes(id: string): Array<[string, string]> {
  if (!id.includes('=')) {
    const slash = id.indexOf('/');
    if (slash <= 0 || slash === id.length - 1) throw new SourceFailure('expected the item as SERVICE/ACCOUNT or as attributes, service=NAME account=NAME');
    return [
      ['service', id.slice(0, slash)],
      ['account', id.slice(slash + 1)],
    ];
  }
  const pairs = id
    .split(/[\s,]+/)
    .filter((p) => p !== '')
    .map((pair): [string, string] => {
      const eq = pair.indexOf('=');
      if (eq <= 0 || eq === pair.length - 1) throw new SourceFailure(`"${pair}" is not NAME=VALUE`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    });
  return pairs;
}

export function keychainReader(config: Config, env: NodeJS.ProcessEnv): SourceReader {
  // The lookup needs the session bus and nothing of keyway's secrets (its own, grants' env:, other sources' keys).
  const childEnv = Object.fromEntries(Object.entries(env).filter(([name]) => LOOKUP_ENV.includes(name)));
  return {
    async fetch(item: SourcedSecret): Promise<string> {
      if (process.platform === 'darwin') {
        throw new SourceFailure(
          'the macOS Keychain is not read by this source: use secret: {cmd: [security, find-generic-password, -s, SERVICE, -a, ACCOUNT, -w]}',
        );
      }
      const argv = ['secret-tool', 'lookup', ...keychainAttributes(item.id).flat()];
      let value: string;
      try {
        value = await runCommand({ kind: 'cmd', argv, cacheMs: 0, timeoutMs: config.timeout }, childEnv);
      } catch (err) {
        if (!(err instanceof CommandFailed)) throw err;
        // secret-tool exits 1 saying nothing when no item matches; its stderr names a D-Bus problem (never a value).
        const line = err.stderr
          .split('\n')
          .find((l) => l.trim() !== '')
          ?.slice(0, 200);
        throw new SourceFailure(
          /not found/.test(err.message)
            ? 'secret-tool is not installed (Debian: libsecret-tools)'
            : line
              ? `secret-tool ${err.message}: ${line}`
              : 'no item in the keyring has these attributes',
        );
      }
      return pickField(value, item.key);
    },
  };
}
