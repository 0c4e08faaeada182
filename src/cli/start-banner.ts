// What `keyway start` says on a terminal once it listens: where it is, what it serves, and what to
// run next. Off a terminal (a service manager, a pipe) it says one line instead, which scripts and
// tests wait for: "keyway proxy on http://HOST:PORT".
import { existsSync } from 'node:fs';
import type { RunningKeyway } from '../app/index.ts';
import { formatListen } from '../config/index.ts';

export function listeningLine(running: RunningKeyway): string {
  return `keyway proxy on http://${address(running.proxyAddress)}; CA ${running.ca.certPath}; run \`keyway env\` for the client settings`;
}

export function banner(running: RunningKeyway): string[] {
  const { grants, agents } = running.counts();
  const tokenFile = running.services.paths.adminToken;
  const signIn = existsSync(tokenFile) ? `the token in ${tokenFile}` : 'the admin token you gave keyway (KEYWAY_ADMIN_TOKEN)';
  const admin = running.adminAddress ? `http://${address(running.adminAddress)}/  (the dashboard: sign in with ${signIn})` : 'off';
  const lines = [
    `keyway proxy on http://${address(running.proxyAddress)}`,
    `  admin   ${admin}`,
    `  home    ${running.services.paths.home}`,
    `  CA      ${running.ca.certPath}`,
    `  grants  ${grants}   agents ${agents}${agents === 0 ? ' (any local client may use every grant)' : ''}`,
    '',
  ];
  if (grants === 0) {
    lines.push(
      'No grants yet. Add one (in another terminal):',
      '  keyway grants add github --type bearer --domains api.github.com',
      '  printf \'%s\' "$GITHUB_TOKEN" | keyway secrets set github --stdin',
      '  or connect an OAuth account: keyway connect google',
      '',
    );
  }
  lines.push(
    'Send a program through keyway:',
    '  keyway run -- curl https://api.github.com/user     (one command)',
    '  eval "$(keyway env)"                               (this shell)',
    'Check the setup with `keyway doctor`; Ctrl-C stops keyway.',
  );
  return lines;
}

function address(a: { address: string; port: number }): string {
  return formatListen({ host: a.address, port: a.port });
}
