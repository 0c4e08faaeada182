import { randomBytes } from 'node:crypto';
import { GRANT_ID, parseDuration } from '../../config/index.ts';
import { agentRecordId, AGENT_PREFIX, type StoredAgent } from '../../credentials/agent-record.ts';
import { hashAgentKey } from '../../credentials/agents.ts';
import { KeywayError } from '../../errors/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError } from '../io.ts';
import { proxyUrl } from '../proxy-url.ts';

export const agents: Command = {
  name: 'agents',
  summary: 'add, list and remove agents',
  usage: `keyway agents add ID [--grants G,…] [--lease-ttl D] [--json]
keyway agents list [--json]
keyway agents rm ID

\`add\` prints the agent's proxy URL with its key, once: keyway keeps only a hash of the key.
Once any agent exists, every client must send agent credentials (HTTPS_PROXY=http://ID:KEY@…).`,
  async run(argv, io) {
    const args = parse(argv, { grants: { type: 'string' }, 'lease-ttl': { type: 'string' } });
    const [action, id] = args.positionals;
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) {
      const rows = [
        ...Object.entries(services.config.agents).map(([agentId, a]) => ({ id: agentId, source: 'config', grants: a.grants ?? ['*'] })),
        ...services.store
          .entries<StoredAgent>(AGENT_PREFIX)
          .filter(([, a]) => !services.config.agents[a.id])
          .map(([, a]) => ({ id: a.id, source: 'store', grants: a.grants ?? ['*'], created_at: a.created_at })),
      ];
      if (args.json) printJson(io, rows);
      else printTable(io, rows, ['id', 'grants', 'source']);
      return 0;
    }
    if (!id) throw usageError(`agents ${action}: expected an agent id`);
    if (action === 'add') {
      if (!GRANT_ID.test(id)) throw usageError(`agent id "${id}": expected a-z, 0-9 and -`);
      if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config`);
      const leaseText = args.string('lease-ttl');
      const leaseTtl = leaseText === undefined ? undefined : parseDuration(leaseText);
      if (leaseText !== undefined && leaseTtl === undefined) throw usageError(`--lease-ttl: expected a duration such as 15m or 1h`);
      const key = randomBytes(32).toString('base64url');
      const record: StoredAgent = {
        id,
        key_sha256: hashAgentKey(key).toString('hex'),
        grants: args.list('grants'),
        lease_ttl_ms: leaseTtl,
        created_at: new Date().toISOString(),
      };
      await services.store.update((draft) => {
        if (draft.get(agentRecordId(id))) throw new KeywayError('conflict', `agent "${id}" exists; remove it first`);
        draft.set(agentRecordId(id), record);
      });
      const url = proxyUrl(services.config, { id, key });
      if (args.json) printJson(io, { id, key, proxy_url: url, grants: record.grants ?? null });
      else io.out(`${url}\n(shown once; run programs with \`keyway run --agent ${id} -- CMD\` and KEYWAY_AGENT_KEY set, or export HTTPS_PROXY to this URL)`);
      return 0;
    }
    if (action === 'rm') {
      const removed = await services.store.update((draft) => draft.delete(agentRecordId(id)));
      if (!removed) throw new KeywayError('not_found', services.config.agents[id] ? `agent "${id}" is defined in the config; remove it there` : `no agent "${id}"`);
      io.out(args.json ? JSON.stringify({ removed: id }) : `removed agent ${id}`);
      return 0;
    }
    throw usageError(`agents: unknown action "${action}"`);
  },
};
