import { readRulesFile } from '../rules-file.ts';
import { closestName } from '../did-you-mean.ts';
import { addAgent, listAgents, removeAgent, rotateAgentKey } from '../../operations/agents.ts';
import { delegateAgent } from '../../operations/delegation.ts';
import { endLease, grantLease } from '../../operations/leases.ts';
import { setAgentLimits } from '../../operations/agent-grants.ts';
import { setAgentLeaseTerms } from '../../operations/agent-lease-terms.ts';
import type { LimitsInput } from '../../config/limits.ts';
import type { Services } from '../../open-home.ts';
import { parse, type Args } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError, type CommandIO } from '../io.ts';
import { proxyUrl } from '../proxy-url.ts';
import { KeywayError } from '../../errors/index.ts';

const USAGE = `keyway agents add ID [--grants G,…] [--lease-ttl D] [--max-lease-ttl D] [LIMITS] [--json]
keyway agents list [--json]
keyway agents delegate PARENT --name CHILD [--grants G,…] [--rules FILE] [--ttl D] [--depth N] [--json]
keyway agents show ID [--json]
keyway agents rm ID
keyway agents rotate-key ID [--json]
keyway agents lease AGENT GRANT [--ttl D] [--json]
keyway agents revoke-lease AGENT GRANT [--json]
keyway agents limits ID (LIMITS | --none) [--json]
keyway agents set ID [--lease-ttl D|none] [--max-lease-ttl D|none] [--json]

LIMITS: --rate N/s|N/min|N/h [--burst N] [--quota-requests N/day] [--quota-bytes SIZE/day], as the
config's limits: take them (a config agent's limits are set in the config).

\`add\` prints the agent's proxy URL with its key, once: keyway keeps only a hash of the key.
Once any agent exists, every client must send agent credentials (HTTPS_PROXY=http://ID:KEY@…):
anonymous access ends, so add an agent for each client. --grants names existing grants only.
\`rotate-key\` gives the agent a new key (the old one is refused from then on) and prints the new
proxy URL, once.

Leases are the second clock, beside the token's own expiry. An agent with a lease_ttl may use a
grant only while it holds a lease on it: the first use starts one of lease_ttl; when it runs out,
requests get 403 lease_expired until \`lease\` gives a new one. \`lease\` sets the expiry to now + D
(default: the agent's lease_ttl), never more than max_lease_ttl from now. \`revoke-lease\` ends it at
once, and it does not restart by itself. \`list\` shows each agent's grants with both clocks.
\`set\` gives an agent made here a lease clock, changes it, or takes it away (none), keeping its
key: turning the clock on or off drops the agent's leases (a first use starts one again); a lower
max_lease_ttl cuts a live lease down to it.
\`delegate\` mints a child agent for PARENT, never wider (docs/delegation.md): its grants a subset of
the parent's (default: the parent's), its TTL (default 1h) never past the parent's expiry or
max_lease_ttl, its depth (the generations it may mint below it, default 0) less than the parent's (a
root agent's is 1). --rules FILE gives it rules of its own (YAML, the config's rule form): they
only narrow it. Each request of the child must be allowed for it and every ancestor as they
stand; removing or rotating the parent ends the child. Prints the child's proxy URL, once.
\`show\` adds the agent's limits (config limits: and grant_limits:) with today's quota use, as
counted in the store by every keyway process (a process takes a few requests at a time, so it can
read a little above what was sent); rates are counted in each process and not shown.`;

/** Each subcommand and the words after it (args.ts refuses any other, and any word more). */
const WORDS = { add: 1, delegate: 1, list: 0, show: 1, rm: 1, 'rotate-key': 1, lease: 2, 'revoke-lease': 2, limits: 1, set: 1 } as const;

const LIMIT_FLAGS = {
  rate: { type: 'string' },
  burst: { type: 'string' },
  'quota-requests': { type: 'string' },
  'quota-bytes': { type: 'string' },
  none: { type: 'boolean' },
} as const;

/** The limits the flags give, in the config's form (checked by the operation), or undefined for none given. */
function limitsFromFlags(args: Args): LimitsInput | undefined {
  const rate = args.string('rate');
  const burstText = args.string('burst');
  const requests = args.string('quota-requests');
  const bytes = args.string('quota-bytes');
  if (rate === undefined && burstText === undefined && requests === undefined && bytes === undefined) return undefined;
  const burst = burstText === undefined ? undefined : Number(burstText);
  if (burstText !== undefined && !Number.isInteger(burst)) throw usageError(`--burst: expected a whole number, got "${burstText}"`);
  return {
    ...(rate !== undefined ? { rate } : {}),
    ...(burst !== undefined ? { burst } : {}),
    ...(requests !== undefined || bytes !== undefined
      ? { quota: { ...(requests !== undefined ? { requests } : {}), ...(bytes !== undefined ? { bytes } : {}) } }
      : {}),
  };
}

// Parse flags, call the operation (src/operations/agents.ts and leases.ts, shared with the admin API), print.
export const agents: Command = {
  name: 'agents',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        grants: { type: 'string' },
        'lease-ttl': { type: 'string' },
        'max-lease-ttl': { type: 'string' },
        ttl: { type: 'string' },
        name: { type: 'string' },
        depth: { type: 'string' },
        rules: { type: 'string' },
        ...LIMIT_FLAGS,
      },
      WORDS,
    );
    const [action, id, grantId] = args.positionals;
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) return list(services, args, io);
    if (!id) throw usageError(`agents ${action}: expected an agent id`);
    if (action === 'show') return show(services, args, io, id);
    if (action === 'add') return add(services, args, io, id);
    if (action === 'delegate') return delegate(services, args, io, id);
    if (action === 'rotate-key') return rotateKey(services, args, io, id);
    if (action === 'limits') return setLimits(services, args, io, id);
    if (action === 'set') return setLeaseTerms(services, args, io, id);
    if (action === 'rm') {
      await audited(services, io, { action: 'agents.delete', agent: id }, () => removeAgent(services, id));
      io.out(args.json ? JSON.stringify({ removed: id }) : `removed agent ${id}`);
      return 0;
    }
    if (!grantId) throw usageError(`agents ${action}: expected AGENT GRANT`);
    return action === 'lease' ? lease(services, args, io, id, grantId) : revoke(services, args, io, id, grantId);
  },
};

async function add(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  const limits = limitsFromFlags(args);
  const input = { id, grants: args.list('grants'), leaseTtl: args.string('lease-ttl'), maxLeaseTtl: args.string('max-lease-ttl'), limits };
  const changed = [
    ...(limits !== undefined ? ['limits'] : []),
    'key',
    ...(input.grants !== undefined ? ['grants'] : []),
    ...(input.leaseTtl ? ['lease_ttl'] : []),
    ...(input.maxLeaseTtl ? ['max_lease_ttl'] : []),
  ];
  const added = await audited(services, io, { action: 'agents.create', agent: id, changed }, () => addAgent(services, input, 'cli'));
  const url = proxyUrl(services.config, { id, key: added.key });
  if (args.json) printJson(io, { id, key: added.key, proxy_url: url, grants: added.grants });
  else io.out(`${url}\n(shown once; run programs with \`keyway run --agent ${id} -- CMD\` and KEYWAY_AGENT_KEY set, or export HTTPS_PROXY to this URL)`);
  // On stderr so that --json and scripted use still read one clean result on stdout.
  if (added.firstAgent) {
    io.err(
      `keyway: this is the first agent, so anonymous access has ended: every other client must now send agent credentials ` +
        `or get 407 proxy_auth_required. Keep other clients working by adding an agent for each (keyway agents add ID).`,
    );
  }
  return 0;
}

async function delegate(services: Services, args: Args, io: CommandIO, parent: string): Promise<number> {
  const name = args.string('name');
  if (name === undefined) throw usageError('agents delegate: expected --name CHILD');
  const depthText = args.string('depth');
  const depth = depthText === undefined ? undefined : Number(depthText);
  if (depthText !== undefined && !Number.isInteger(depth)) throw usageError(`--depth: expected a whole number, got "${depthText}"`);
  const rulesFile = args.string('rules');
  const input = {
    name,
    grants: args.list('grants'),
    ttl: args.string('ttl') ?? undefined,
    depth,
    rules: rulesFile === undefined ? undefined : readRulesFile(rulesFile),
  };
  const changed = [
    'key',
    'parent',
    'expires_at',
    ...(input.grants !== undefined ? ['grants'] : []),
    ...(depth !== undefined ? ['delegation_depth'] : []),
    ...(input.rules !== undefined ? ['rules'] : []),
  ];
  const child = await audited(services, io, { action: 'agent.delegate', agent: name, changed }, () => delegateAgent(services, parent, input, 'cli'));
  const url = proxyUrl(services.config, { id: name, key: child.key });
  if (args.json) printJson(io, { ...child, proxy_url: url });
  else io.out(`${url}\n(shown once; child of ${child.chain.slice(0, -1).join(' > ')}, until ${child.expires_at})`);
  return 0;
}

async function setLimits(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  const limits = limitsFromFlags(args);
  if (limits === undefined && !args.flag('none')) throw usageError('agents limits: give --rate, --burst, --quota-requests or --quota-bytes, or --none');
  if (limits !== undefined && args.flag('none')) throw usageError('agents limits: --none takes no other limit');
  const result = await audited(services, io, { action: 'agents.update', agent: id, changed: ['limits'] }, () =>
    setAgentLimits(services, id, limits ?? null, 'cli'),
  );
  if (args.json) printJson(io, { id, limits: result.limits });
  else io.out(result.limits === null ? `agent ${id} has no limits now` : `limits of agent ${id} set (keyway agents show ${id} gives today's use)`);
  return 0;
}

/** `set`: the lease terms of an agent made here; `none` takes a term away. */
async function setLeaseTerms(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  const term = (flag: string) => {
    const text = args.string(flag);
    return text === 'none' ? null : text;
  };
  const input = { leaseTtl: term('lease-ttl'), maxLeaseTtl: term('max-lease-ttl') };
  if (input.leaseTtl === undefined && input.maxLeaseTtl === undefined) {
    throw usageError('agents set: give --lease-ttl or --max-lease-ttl (a duration such as 1h, or none)');
  }
  // A clock taken away takes its max_lease_ttl with it.
  const changed = [
    ...(input.leaseTtl !== undefined ? ['lease_ttl'] : []),
    ...(input.maxLeaseTtl !== undefined || input.leaseTtl === null ? ['max_lease_ttl'] : []),
  ];
  const terms = await audited(services, io, { action: 'agents.update', agent: id, changed }, () => setAgentLeaseTerms(services, id, input, 'cli'));
  if (args.json) printJson(io, { id, ...terms });
  else if (terms.lease_ttl === null) io.out(`agent ${id} has no lease clock now: its grants do not expire by lease`);
  else io.out(`agent ${id}: lease_ttl ${terms.lease_ttl}, max_lease_ttl ${terms.max_lease_ttl ?? '-'} (keyway agents list shows its leases)`);
  return 0;
}

async function rotateKey(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  const { key } = await audited(services, io, { action: 'agents.rotate_key', agent: id, changed: ['key'] }, () => rotateAgentKey(services, id));
  const url = proxyUrl(services.config, { id, key });
  if (args.json) printJson(io, { id, key, proxy_url: url });
  else io.out(`${url}\n(new key, shown once; the old key is refused from now on)`);
  return 0;
}

function list(services: Services, args: Args, io: CommandIO): number {
  const agentsOut = listAgents(services);
  if (args.json) {
    printJson(io, agentsOut);
    return 0;
  }
  // One row per agent and grant, so both clocks of each grant sit side by side.
  const rows = agentsOut.flatMap((a) => {
    const base = { id: a.id, source: a.source, parent: a.parent ?? '-', lease_ttl: a.lease_ttl ?? '-' };
    if (a.access.length === 0) return [{ ...base, grant: a.grants.join(','), lease: '-' }];
    return a.access.map((g) => ({ ...base, grant: g.grant, lease: g.lease, lease_expires_at: g.lease_expires_at, token_expires_at: g.token_expires_at }));
  });
  // A parent column only once some agent is a child (keyway agents delegate): the table stays as it was without.
  const parent = agentsOut.some((a) => a.parent !== null) ? ['parent'] : [];
  printTable(io, rows, ['id', 'source', ...parent, 'grant', 'lease_ttl', 'lease', 'lease_expires_at', 'token_expires_at']);
  return 0;
}

function show(services: Services, args: Args, io: CommandIO, id: string): number {
  const agents = listAgents(services);
  const agent = agents.find((a) => a.id === id);
  if (!agent) {
    const known = agents.map((a) => a.id);
    const near = closestName(id, known);
    throw new KeywayError(
      'not_found',
      `no agent "${id}"${near ? `; did you mean ${near}?` : ''} (${known.length === 0 ? 'there are none' : `agents: ${known.join(', ')}`})`,
    );
  }
  if (args.json) {
    printJson(io, agent);
    return 0;
  }
  const child = agent.parent === null ? '' : `; child of ${agent.parent} until ${agent.expires_at ?? '-'}`;
  io.out(`agent ${agent.id} (${agent.source}; grants ${agent.grants.join(', ')}; mode ${agent.mode}; lease_ttl ${agent.lease_ttl ?? '-'}${child})`);
  if (agent.access.length > 0) {
    printTable(
      io,
      agent.access.map((g) => ({ grant: g.grant, lease: g.lease, lease_expires_at: g.lease_expires_at, token_expires_at: g.token_expires_at })),
      ['grant', 'lease', 'lease_expires_at', 'token_expires_at'],
    );
  }
  if (agent.limits.length === 0) {
    io.out('limits: none');
    return 0;
  }
  printTable(
    io,
    agent.limits.map((l) => ({
      limit: l.scope === 'agent' ? 'all its requests' : `on ${l.grant}`,
      rate: l.rate === null ? '-' : `${l.rate} (burst ${l.burst})`,
      quota:
        [
          ...(l.quota_requests === null ? [] : [`${l.quota_used}/${l.quota_requests} today`]),
          ...(l.quota_bytes === null ? [] : [`${l.bytes_used}/${l.quota_bytes} bytes today`]),
        ].join(', ') || '-',
      resets_at: l.quota_resets_at ?? '-',
    })),
    ['limit', 'rate', 'quota', 'resets_at'],
  );
  return 0;
}

async function lease(services: Services, args: Args, io: CommandIO, agentId: string, grantId: string): Promise<number> {
  const result = await audited(services, io, { action: 'agents.lease', agent: agentId, grant: grantId, changed: ['lease'] }, () =>
    grantLease(services, agentId, grantId, args.string('ttl'), 'cli'),
  );
  if (args.json) {
    const { lease: record, ...facts } = result;
    printJson(io, { ...record, ...facts });
    return 0;
  }
  const verb = result.renewed ? 'renewed' : 'granted';
  io.out(`${verb} lease for agent ${agentId} on grant ${grantId} until ${result.lease.expires_at} (${result.ttl})`);
  if (result.capped) io.out(`capped at max_lease_ttl ${result.max_lease_ttl}: ${result.requested_ttl} was asked for`);
  return 0;
}

async function revoke(services: Services, args: Args, io: CommandIO, agentId: string, grantId: string): Promise<number> {
  const record = await audited(services, io, { action: 'agents.revoke_lease', agent: agentId, grant: grantId, changed: ['lease'] }, () =>
    endLease(services, agentId, grantId),
  );
  if (args.json) printJson(io, record);
  else
    io.out(
      `revoked the lease of agent ${agentId} on grant ${grantId}; it ended at ${record.expires_at} (renew with keyway agents lease ${agentId} ${grantId} --ttl D)`,
    );
  return 0;
}
