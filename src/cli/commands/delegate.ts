import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { childProxyUrl, DoorRefused, doorAccessFrom, mintThroughDoor, revokeThroughDoor } from '../door-client.ts';
import { printJson, usageError } from '../io.ts';
import { readRulesFile } from '../rules-file.ts';

const USAGE = `keyway delegate --name CHILD [--grants G,…] [--rules FILE] [--ttl D] [--depth N] [--budget usd=X/PER] [--json]
keyway delegate rm ID

Self-service delegation, run by an agent under \`keyway run --agent ID\` (or wherever HTTPS_PROXY is
its proxy URL, http://ID:KEY@HOST:PORT, and NODE_EXTRA_CA_CERTS keyway's CA): mints a child of that
agent with only that agent's own key, through the proxy (https://keyway.internal/delegate), never
through the admin API or keyway's home. The child's id is PARENT-CHILD (CHILD as given when it
already begins PARENT-); its proxy URL is printed
once. The child is never wider than its parent (docs/delegation.md): --grants a subset of the
parent's (default: the parent's), --ttl within the parent's (default 1h or less), --depth below the
parent's (default 0); --budget usd=X/PER or tokens=N/PER (PER: hour, day, month) gives it a spend
budget of its own, its spend counted against every ancestor's budgets too. \`keyway delegate rm ID\` revokes a child (or a child's child) of this agent,
and every child below it. Refusals exit 1 with keyway's code: delegation_refused, delegation_limited
(too many mints a minute or children alive: wait as it says), not_found, proxy_auth_required.`;

export const delegate: Command = {
  name: 'delegate',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        name: { type: 'string' },
        grants: { type: 'string' },
        rules: { type: 'string' },
        ttl: { type: 'string' },
        depth: { type: 'string' },
        budget: { type: 'string' },
      },
      { rm: 1 },
    );
    const [action, id] = args.positionals;
    const access = doorAccessFrom(io.env);
    try {
      if (action === 'rm') {
        if (id === undefined) throw usageError("delegate rm: expected the child's id (PARENT-CHILD)");
        const removed = await revokeThroughDoor(access, id);
        if (args.json) printJson(io, removed);
        else io.out(`revoked ${removed.removed.join(', ')}`);
        return 0;
      }
      const name = args.string('name');
      if (name === undefined) throw usageError('delegate: expected --name CHILD');
      const depthText = args.string('depth');
      const depth = depthText === undefined ? undefined : Number(depthText);
      if (depthText !== undefined && !Number.isInteger(depth)) throw usageError(`--depth: expected a whole number, got "${depthText}"`);
      const rulesFile = args.string('rules');
      const child = await mintThroughDoor(access, {
        name,
        grants: args.list('grants'),
        ttl: args.string('ttl'),
        depth,
        budget: args.string('budget'),
        rules: rulesFile === undefined ? undefined : readRulesFile(rulesFile),
      });
      // The URL this agent reaches keyway by, with the child's credentials: where the child is to go.
      const url = childProxyUrl(access, child);
      if (args.json) printJson(io, { ...child, proxy_url: url });
      else io.out(`${url}\n(shown once; child of ${child.chain.slice(0, -1).join(' > ')}, until ${child.expires_at})`);
      return 0;
    } catch (err) {
      if (!(err instanceof DoorRefused)) throw err;
      io.err(`keyway delegate: ${err.message}`);
      return 1;
    }
  },
};
