import { randomBytes } from 'node:crypto';
import { formatDuration, GRANT_ID, parseDuration } from '../../config/index.ts';
import { agentRecordId, type StoredAgent } from '../../credentials/agent-record.ts';
import { agentTerms, hashAgentKey, type AgentTerms } from '../../credentials/agents.ts';
import { listGrants, type GrantListing } from '../../credentials/grant-listing.ts';
import { agentLeasePrefix, leaseRecordId, type LeaseRecord } from '../../credentials/lease-record.ts';
import { KeywayError } from '../../errors/index.ts';
import { leaseRequired, leaseStatus, renewLease, revokeLease } from '../../policy/leases.ts';
import type { Services } from '../../services.ts';
import { parse, type Args } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError, type CommandIO } from '../io.ts';
import { proxyUrl } from '../proxy-url.ts';

const USAGE = `keyway agents add ID [--grants G,…] [--lease-ttl D] [--max-lease-ttl D] [--json]
keyway agents list [--json]
keyway agents rm ID
keyway agents rotate-key ID [--json]
keyway agents lease AGENT GRANT [--ttl D] [--json]
keyway agents revoke-lease AGENT GRANT [--json]

\`add\` prints the agent's proxy URL with its key, once: keyway keeps only a hash of the key.
Once any agent exists, every client must send agent credentials (HTTPS_PROXY=http://ID:KEY@…):
anonymous access ends, so add an agent for each client. --grants names existing grants only.
\`rotate-key\` gives the agent a new key (the old one is refused from then on) and prints the new
proxy URL, once.

Leases are the second clock, beside the token's own expiry. An agent with a lease_ttl may use a
grant only while it holds a lease on it: the first use starts one of lease_ttl; when it runs out,
requests get 403 lease_expired until \`lease\` gives a new one. \`lease\` sets the expiry to now + D
(default: the agent's lease_ttl), never more than max_lease_ttl from now. \`revoke-lease\` ends it at
once, and it does not restart by itself. \`list\` shows each agent's grants with both clocks.`;

const ACTIONS = ['add', 'list', 'rm', 'rotate-key', 'lease', 'revoke-lease'] as const;

export const agents: Command = {
  name: 'agents',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, { grants: { type: 'string' }, 'lease-ttl': { type: 'string' }, 'max-lease-ttl': { type: 'string' }, ttl: { type: 'string' } });
    const [action, id, grantId] = args.positionals;
    if (action !== undefined && !(ACTIONS as readonly string[]).includes(action)) {
      throw usageError(`agents: unknown subcommand "${action}" (expected one of: ${ACTIONS.join(', ')})`);
    }
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) return list(services, args, io);
    if (!id) throw usageError(`agents ${action}: expected an agent id`);
    if (action === 'add') return add(services, args, io, id);
    if (action === 'rotate-key') return rotateKey(services, args, io, id);
    if (action === 'rm') {
      const removed = await services.store.update((draft) => {
        const existed = draft.delete(agentRecordId(id));
        if (existed) for (const [leaseId] of draft.entries(agentLeasePrefix(id))) draft.delete(leaseId);
        return existed;
      });
      if (!removed)
        throw new KeywayError('not_found', services.config.agents[id] ? `agent "${id}" is defined in the config; remove it there` : `no agent "${id}"`);
      io.out(args.json ? JSON.stringify({ removed: id }) : `removed agent ${id}`);
      return 0;
    }
    if (action === 'lease' || action === 'revoke-lease') {
      if (!grantId) throw usageError(`agents ${action}: expected AGENT GRANT`);
      const agent = leasedAgent(services, id, grantId, action);
      return action === 'lease' ? lease(services, args, io, agent, grantId) : revoke(services, args, io, agent, grantId);
    }
    throw usageError(`agents: unknown subcommand "${action}" (expected one of: ${ACTIONS.join(', ')})`);
  },
};

function duration(args: Args, flag: string): number | undefined {
  const text = args.string(flag);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw usageError(`--${flag}: expected a duration such as 15m, 1h or 7d`);
  return ms;
}

async function add(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  if (!GRANT_ID.test(id)) throw usageError(`agent id "${id}": expected a-z, 0-9 and -`);
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config`);
  const leaseTtl = duration(args, 'lease-ttl');
  const maxLeaseTtl = duration(args, 'max-lease-ttl');
  if (leaseTtl !== undefined && maxLeaseTtl !== undefined && leaseTtl > maxLeaseTtl) {
    throw usageError(`--lease-ttl ${formatDuration(leaseTtl)} is longer than --max-lease-ttl ${formatDuration(maxLeaseTtl)}`);
  }
  const grants = args.list('grants');
  if (grants !== undefined) checkGrantsExist(services, grants);
  const key = newAgentKey();
  const record: StoredAgent = {
    id,
    key_sha256: hashAgentKey(key).toString('hex'),
    grants,
    lease_ttl_ms: leaseTtl,
    max_lease_ttl_ms: maxLeaseTtl,
    created_at: new Date().toISOString(),
  };
  // Counted before the write: with no agent at all, keyway serves anonymous loopback clients.
  const firstAgent = agentTerms(services.config, services.store).length === 0;
  await services.store.update((draft) => {
    if (draft.get(agentRecordId(id))) throw new KeywayError('conflict', `agent "${id}" exists; remove it first`);
    // Leases left by an earlier agent of the same id must not carry over.
    for (const [leaseId] of draft.entries(agentLeasePrefix(id))) draft.delete(leaseId);
    draft.set(agentRecordId(id), record);
  });
  const url = proxyUrl(services.config, { id, key });
  if (args.json) printJson(io, { id, key, proxy_url: url, grants: record.grants ?? null });
  else io.out(`${url}\n(shown once; run programs with \`keyway run --agent ${id} -- CMD\` and KEYWAY_AGENT_KEY set, or export HTTPS_PROXY to this URL)`);
  // On stderr so that --json and scripted use still read one clean result on stdout.
  if (firstAgent) {
    io.err(
      `keyway: this is the first agent, so anonymous access has ended: every other client must now send agent credentials ` +
        `or get 407 proxy_auth_required. Keep other clients working by adding an agent for each (keyway agents add ID).`,
    );
  }
  return 0;
}

function newAgentKey(): string {
  return randomBytes(32).toString('base64url');
}

/** Refuses grant ids that exist nowhere: an agent bound to a typo would be refused everything, silently. */
function checkGrantsExist(services: Services, wanted: readonly string[]): void {
  const known = listGrants(services).map((g) => g.id);
  const unknown = wanted.filter((g) => !known.includes(g));
  if (unknown.length === 0) return;
  const plural = unknown.length > 1 ? 's' : '';
  throw usageError(
    `--grants: no grant${plural} ${unknown.map((g) => `"${g}"`).join(', ')} (known grants: ${known.join(', ') || 'none; add one with keyway grants add'})`,
  );
}

/** A new key for a store agent; the old key's hash is replaced, so the old key is refused from the next reload. */
async function rotateKey(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  if (services.config.agents[id]) {
    throw new KeywayError('conflict', `agent "${id}" is defined in the config; its key comes from agents.${id}.key there`);
  }
  const key = newAgentKey();
  await services.store.update((draft) => {
    const existing = draft.get<StoredAgent>(agentRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no agent "${id}" (see keyway agents list)`);
    draft.set(agentRecordId(id), { ...existing, key_sha256: hashAgentKey(key).toString('hex') } satisfies StoredAgent);
  });
  const url = proxyUrl(services.config, { id, key });
  if (args.json) printJson(io, { id, key, proxy_url: url });
  else io.out(`${url}\n(new key, shown once; the old key is refused from now on)`);
  return 0;
}

/** The grants an agent may use that exist now: its list, or every grant when it has none. */
function agentGrantIds(agent: AgentTerms, grants: readonly GrantListing[]): string[] {
  return agent.grants ? [...agent.grants] : grants.map((g) => g.id);
}

function list(services: Services, args: Args, io: CommandIO): number {
  const now = new Date();
  const grants = listGrants(services);
  const tokenExpiry = (id: string) => grants.find((g) => g.id === id)?.token_expires_at ?? null;
  const agentsOut = agentTerms(services.config, services.store).map((agent) => {
    const access = agentGrantIds(agent, grants).map((grant) => {
      const record = services.store.get<LeaseRecord>(leaseRecordId(agent.id, grant));
      const status = leaseStatus(agent, grant, record, now);
      return {
        grant,
        lease: status.state,
        lease_expires_at: status.expires_at,
        lease_granted_at: record?.granted_at ?? null,
        lease_renewed_at: record?.renewed_at ?? null,
        token_expires_at: tokenExpiry(grant),
      };
    });
    return {
      id: agent.id,
      source: agent.source,
      grants: agent.grants ?? ['*'],
      mode: agent.mode,
      lease_ttl: agent.leaseTtlMs === undefined ? null : formatDuration(agent.leaseTtlMs),
      max_lease_ttl: agent.maxLeaseTtlMs === undefined ? null : formatDuration(agent.maxLeaseTtlMs),
      created_at: agent.createdAt ?? null,
      access,
    };
  });
  if (args.json) {
    printJson(io, agentsOut);
    return 0;
  }
  // One row per agent and grant, so both clocks of each grant sit side by side.
  const rows = agentsOut.flatMap((a) => {
    const base = { id: a.id, source: a.source, lease_ttl: a.lease_ttl ?? '-' };
    if (a.access.length === 0) return [{ ...base, grant: a.grants.join(','), lease: '-' }];
    return a.access.map((g) => ({ ...base, grant: g.grant, lease: g.lease, lease_expires_at: g.lease_expires_at, token_expires_at: g.token_expires_at }));
  });
  printTable(io, rows, ['id', 'source', 'grant', 'lease_ttl', 'lease', 'lease_expires_at', 'token_expires_at']);
  return 0;
}

/** The agent and grant for a lease command, checked: both exist, the agent may use the grant and has a lease clock. */
function leasedAgent(services: Services, agentId: string, grantId: string, action: string): AgentTerms {
  const agent = agentTerms(services.config, services.store).find((a) => a.id === agentId);
  if (!agent) throw new KeywayError('not_found', `no agent "${agentId}" (see keyway agents list)`);
  const known = listGrants(services).some((g) => g.id === grantId);
  const recorded = services.store.get<LeaseRecord>(leaseRecordId(agentId, grantId)) !== undefined;
  // A lease on a grant removed since may still be revoked; a new lease needs the grant.
  if (!known && !(action === 'revoke-lease' && recorded)) throw new KeywayError('not_found', `no grant "${grantId}" (see keyway grants list)`);
  if (agent.grants && !agent.grants.includes(grantId)) {
    throw new KeywayError('conflict', `agent "${agentId}" may not use grant "${grantId}" (its grants: ${agent.grants.join(', ') || 'none'})`);
  }
  if (!leaseRequired(agent)) {
    throw new KeywayError(
      'conflict',
      `agent "${agentId}" has no lease_ttl, so its access to grants is not leased` +
        (agent.source === 'config' ? `; set agents.${agentId}.lease_ttl in the config` : '; add the agent with --lease-ttl'),
    );
  }
  return agent;
}

async function lease(services: Services, args: Args, io: CommandIO, agent: AgentTerms, grantId: string): Promise<number> {
  const ttl = duration(args, 'ttl') ?? agent.leaseTtlMs!;
  const result = await services.store.update((draft) => {
    const renewal = renewLease(agent, grantId, draft.get<LeaseRecord>(leaseRecordId(agent.id, grantId)), ttl, new Date());
    draft.set(leaseRecordId(agent.id, grantId), renewal.record);
    return renewal;
  });
  const max = agent.maxLeaseTtlMs === undefined ? null : formatDuration(agent.maxLeaseTtlMs);
  const asked = args.string('ttl') ?? formatDuration(ttl);
  if (args.json) {
    printJson(io, {
      ...result.record,
      ttl: formatDuration(result.grantedMs),
      requested_ttl: asked,
      capped: result.capped,
      max_lease_ttl: max,
      renewed: result.renewed,
    });
    return 0;
  }
  const verb = result.renewed ? 'renewed' : 'granted';
  io.out(`${verb} lease for agent ${agent.id} on grant ${grantId} until ${result.record.expires_at} (${formatDuration(result.grantedMs)})`);
  if (result.capped) io.out(`capped at max_lease_ttl ${max}: ${asked} was asked for`);
  return 0;
}

async function revoke(services: Services, args: Args, io: CommandIO, agent: AgentTerms, grantId: string): Promise<number> {
  const record = await services.store.update((draft) => {
    const ended = revokeLease(agent, grantId, draft.get<LeaseRecord>(leaseRecordId(agent.id, grantId)), new Date());
    draft.set(leaseRecordId(agent.id, grantId), ended);
    return ended;
  });
  if (args.json) printJson(io, record);
  else
    io.out(
      `revoked the lease of agent ${agent.id} on grant ${grantId}; it ended at ${record.expires_at} (renew with keyway agents lease ${agent.id} ${grantId} --ttl D)`,
    );
  return 0;
}
