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
    ...(running.workerPids ? [`  workers ${running.workerPids().length} processes (proxy.workers), pids ${running.workerPids().join(' ')}`] : []),
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
  const next = nextSteps(running.inventory());
  lines.push('Send a program through keyway:', `  ${next.run}     (one command)`, `  ${next.env}     (this shell)`);
  if (next.note) lines.push(`  ${next.note}`);
  lines.push('Check the setup with `keyway doctor`; Ctrl-C stops keyway.');
  return lines;
}

type Inventory = ReturnType<RunningKeyway['inventory']>;

/**
 * What to run first, from what is configured: a request to a host a grant covers, as an agent that
 * may use it (with agents configured, a command without --agent gets 407). A grant with only
 * wildcard domains names no host to try; then the command is shown with a placeholder.
 */
export function nextSteps({ grants, agents }: Inventory): { run: string; env: string; note?: string } {
  const url = (grant: Inventory['grants'][number]) => {
    const pattern = grant.domains.find((d) => !d.wildcard);
    if (!pattern) return undefined;
    const host = pattern.host.includes(':') ? `[${pattern.host}]` : pattern.host;
    return `https://${host}${pattern.port === undefined || pattern.port === 443 ? '' : `:${pattern.port}`}/`;
  };
  if (agents.length === 0) {
    // No grants: the github grant the lines above suggest adding.
    const target = grants.length === 0 ? 'https://api.github.com/user' : (grants.map(url).find((u) => u !== undefined) ?? 'https://HOST/');
    return { run: `keyway run -- curl ${target}`, env: 'eval "$(keyway env)"' };
  }
  for (const agent of agents) {
    for (const grant of grants) {
      const target = url(grant);
      if (target === undefined || (agent.grants !== undefined && !agent.grants.has(grant.id))) continue;
      // A store agent's key is shown once, at `agents add`: the CLI takes it from the environment.
      const key = agent.source === 'store' ? 'KEYWAY_AGENT_KEY=… ' : '';
      return { run: `${key}keyway run --agent ${agent.id} -- curl ${target}`, env: `eval "$(${key}keyway env --agent ${agent.id})"` };
    }
  }
  const first = agents[0]!;
  return {
    run: `keyway run --agent ${first.id} -- CMD`,
    env: `eval "$(keyway env --agent ${first.id})"`,
    note: `no agent may use a grant with a host to try yet: \`keyway agents add ID --grants GRANT\` (or the config's agents.ID.grants)`,
  };
}

function address(a: { address: string; port: number }): string {
  return formatListen({ host: a.address, port: a.port });
}
