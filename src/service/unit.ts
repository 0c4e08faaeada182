import { join } from 'node:path';
import { type ServiceLayout, SHARED } from './layout.ts';

// The systemd unit `keyway service install` writes. keyway runs as its own user with nothing it
// does not need: no capability, no new privileges, the file system read-only but for its home,
// its own /tmp and /dev, no namespaces of its own, the system calls of an ordinary service
// (@system-service), sockets of IP, Unix (its contain door, secret commands) and netlink (its
// interfaces) only, and no other process in its /proc. ExecStart names a copy of keyway that only
// root can change (service/installed-copy.ts). (launchd's equivalent, for macOS, is in
// docs/containment.md: a LaunchDaemon plist with UserName and the same environment.)

/** A word of ExecStart: quoted where it holds a space or a quote (systemd's own quoting). */
function word(text: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(text) ? text : `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** The unit's text. `command`: the program and arguments of `keyway start` (node, keyway's main.js, start). */
export function systemdUnit(layout: ServiceLayout, command: readonly string[]): string {
  return `# Written by \`keyway service install\`; \`keyway service uninstall\` removes it.
[Unit]
Description=keyway credential-injecting proxy, as its own user
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${layout.user}
Group=${layout.user}
Environment=${word(`KEYWAY_HOME=${layout.home}`)}
Environment=${word(`KEYWAY_ADMIN_TOKEN_FILE=${join(layout.share, SHARED.adminToken)}`)}
ExecStart=${command.map(word).join(' ')}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths=${word(layout.home)}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
ProtectProc=invisible
ProcSubset=pid

[Install]
WantedBy=multi-user.target
`;
}

/** ExecStart and the Environment lines of a unit, read back (the test runs exactly what the unit would). */
export function unitCommand(text: string): { command: string[]; env: Record<string, string>; user: string | undefined } {
  const env: Record<string, string> = {};
  let command: string[] = [];
  let user: string | undefined;
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at === -1 || line.startsWith('#')) continue;
    const key = line.slice(0, at);
    const value = line.slice(at + 1);
    if (key === 'ExecStart') command = words(value);
    else if (key === 'User') user = value;
    else if (key === 'Environment') {
      const [assignment] = words(value);
      const eq = assignment?.indexOf('=') ?? -1;
      if (assignment !== undefined && eq > 0) env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return { command, env, user };
}

function words(text: string): string[] {
  const out: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of text.matchAll(pattern)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}
