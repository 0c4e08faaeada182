// Agents with the grants they may use and their leases: grant or renew a lease (for a TTL, capped by
// the agent's max_lease_ttl on the server), revoke it at once; add an agent, rotate its key and
// change its grants (agent-forms.js). Delegated agents are drawn under their parent, a tree, each
// with its expiry; removing a store agent removes its subtree, and the confirmation says so.

import { addAgentForm, agentActions, keyPanel } from './agent-forms.js';
import { api } from './api.js';
import { act, h, plural, when } from './dom.js';

export async function renderAgents(main) {
  const holder = h('div', { id: 'agent-list', class: 'stack' });
  const keys = keyPanel();
  const form = h('div');
  main.append(form, keys.element, holder);
  const load = async () => {
    const [{ agents }, { grants }] = await Promise.all([api('GET', '/api/agents'), api('GET', '/api/grants')]);
    const childrenOf = childrenByParent(agents);
    const section = (a, depth) => agentSection(a, grants, keys, load, { depth, childrenOf, section });
    holder.replaceChildren(
      ...(agents.length
        ? roots(agents).map((a) => section(a, 0))
        : [h('p', { class: 'muted' }, 'No agents defined: every loopback client is the anonymous agent.')]),
    );
    return grants;
  };
  const grants = await load();
  form.replaceChildren(addAgentForm(grants, keys, load));
}

/**
 * The agent's leases as { grant, state, expires_at }: from the agent listing (`lease`,
 * `lease_expires_at` per grant) when it has them, else from the grants' lease clocks.
 */
function leasesOf(agent, grants) {
  if (Array.isArray(agent.leases)) {
    return agent.leases.map((l) => ({ grant: l.grant, state: l.state ?? l.lease, expires_at: l.expires_at ?? l.lease_expires_at ?? null }));
  }
  return grants.flatMap((g) => (g.leases ?? []).filter((l) => l.agent === agent.id).map((l) => ({ ...l, grant: g.id })));
}

/** Each parent's children, by id, in the listing's order. */
function childrenByParent(agents) {
  const out = new Map();
  for (const a of agents) if (a.parent) out.set(a.parent, [...(out.get(a.parent) ?? []), a]);
  return out;
}

/** The agents drawn at the top: those with no parent, and any whose parent is not listed (drawn rather than lost). */
function roots(agents) {
  const ids = new Set(agents.map((a) => a.id));
  return agents.filter((a) => !a.parent || !ids.has(a.parent));
}

/** Every agent below `id`, nearest first: what removing it removes too. */
function descendantsOf(id, childrenOf) {
  const out = [];
  for (let generation = childrenOf.get(id) ?? []; generation.length > 0; ) {
    const next = [];
    for (const child of generation) {
      if (out.includes(child.id) || child.id === id) continue;
      out.push(child.id);
      next.push(...(childrenOf.get(child.id) ?? []));
    }
    generation = next;
  }
  return out;
}

function agentSection(agent, grants, keys, reload, tree) {
  const headingId = `agent-${agent.id}`;
  const leases = leasesOf(agent, grants);
  // `['*']`: every grant, as the listing says it.
  const names = !agent.grants || agent.grants.includes('*') ? grants.map((g) => g.id) : agent.grants;
  const rows = names.map((grant) =>
    leaseRow(
      agent,
      grant,
      leases.find((l) => l.grant === grant),
      reload,
    ),
  );
  const facts = [`defined in ${agent.source ?? 'config'}`];
  if (agent.lease_ttl) facts.push(`lease ${agent.lease_ttl}`);
  if (agent.max_lease_ttl) facts.push(`at most ${agent.max_lease_ttl}`);
  if (agent.parent) facts.unshift(`delegated by ${agent.parent}`);
  const children = tree.childrenOf.get(agent.id) ?? [];
  // Headings follow the tree (a root's h2, its children's h3 …), so a screen reader hears it too.
  const heading = `h${Math.min(2 + tree.depth, 6)}`;
  return h(
    'section',
    {
      class: `card agent${agent.parent ? ' child' : ''}`,
      'aria-labelledby': headingId,
      'data-agent': agent.id,
      ...(agent.parent ? { 'data-parent': agent.parent } : {}),
    },
    h(
      'header',
      {},
      h(heading, { id: headingId }, agent.id),
      h('span', { class: 'muted' }, facts.join(' · ')),
      agent.parent ? h('span', { class: 'expiry' }, 'expires ', when(agent.expires_at)) : null,
    ),
    rows.length
      ? h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('caption', { class: 'visually-hidden' }, `Grants and leases of ${agent.id}`),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Grant'), h('th', { scope: 'col' }, 'Lease'), h('th', { scope: 'col' }, 'Actions'))),
            h('tbody', {}, rows),
          ),
        )
      : h('p', { class: 'muted' }, 'This agent may use no grant.'),
    limitsLine(agent),
    agent.source === 'store' ? agentActions(agent, grants, keys, reload) : null,
    agent.source === 'store' ? removeButton(agent, descendantsOf(agent.id, tree.childrenOf), reload) : null,
    children.length
      ? h(
          'div',
          { class: 'agent-children', role: 'group', 'aria-label': `Agents delegated by ${agent.id}` },
          children.map((c) => tree.section(c, tree.depth + 1)),
        )
      : null,
  );
}

/** Removes a store agent and, with it, every agent delegated below it: the confirmation names how many. */
function removeButton(agent, descendants, reload) {
  const below = descendants.length ? ` and the ${plural(descendants.length, 'agent')} delegated below it (${descendants.join(', ')})` : '';
  const button = h(
    'button',
    {
      type: 'button',
      class: 'danger remove-agent',
      'aria-label': `Remove ${agent.id}${descendants.length ? ` and its ${plural(descendants.length, 'descendant')}` : ''}`,
    },
    descendants.length ? `Remove with ${plural(descendants.length, 'descendant')}` : 'Remove',
  );
  button.addEventListener('click', () =>
    act(
      button,
      async () => {
        if (!confirm(`Remove ${agent.id}${below}? Their keys are refused at once and their open connections cut.`))
          throw Object.assign(new Error('Cancelled.'), { hint: null });
        await api('DELETE', `/api/agents/${encodeURIComponent(agent.id)}`);
        await reload();
      },
      `Removed ${agent.id}${below}.`,
    ),
  );
  return h('div', { class: 'actions remove' }, button);
}

/** The agent's limits (config limits: and grant_limits:) and today's quota use, as GET /api/agents gives them. */
function limitsLine(agent) {
  const limits = agent.limits ?? [];
  if (limits.length === 0) return null;
  const parts = limits.map((l) => {
    const what = [];
    if (l.rate) what.push(`${l.rate} (burst ${l.burst}, per replica)`);
    if (l.quota_requests !== null && l.quota_requests !== undefined) what.push(`${l.quota_used}/${plural(l.quota_requests, 'request')} today`);
    if (l.quota_bytes !== null && l.quota_bytes !== undefined) what.push(`${l.bytes_used}/${plural(l.quota_bytes, 'byte')} today`);
    return `${l.scope === 'agent' ? 'all its requests' : `on ${l.grant}`}: ${what.join(', ')}`;
  });
  return h('p', { class: 'limits' }, h('strong', {}, 'Limits '), parts.join(' · '));
}

function leaseRow(agent, grant, lease, reload) {
  if (lease?.state === 'not_required' || (!agent.lease_ttl && !lease)) {
    // Only a grant no rule of the agent names is always allowed; its rules decide the others.
    const rules = agent.rules?.[grant] ?? 0;
    const text =
      rules === 0 ? 'always allowed (no rules, no lease_ttl)' : `allowed when ${rules === 1 ? 'its rule allows' : `its ${rules} rules allow`} (no lease_ttl)`;
    return h('tr', { 'data-grant': grant }, h('th', { scope: 'row' }, grant), h('td', { colspan: '2', class: 'muted' }, text));
  }
  const path = `/api/agents/${encodeURIComponent(agent.id)}/leases/${encodeURIComponent(grant)}`;
  const ttlId = `ttl-${agent.id}-${grant}`;
  const ttl = h('input', { id: ttlId, type: 'text', size: '5', value: agent.lease_ttl ?? '1h', inputmode: 'text', autocomplete: 'off' });
  const active = lease?.state === 'active';
  const put = h('button', { type: 'button', 'aria-label': `${active ? 'Renew' : 'Grant'} the lease of ${agent.id} on ${grant}` }, active ? 'Renew' : 'Grant');
  put.addEventListener('click', () =>
    act(
      put,
      async () => {
        const value = ttl.value.trim();
        await api('PUT', path, value ? { ttl: value } : {});
        await reload();
      },
      `Lease of ${agent.id} on ${grant} ${active ? 'renewed' : 'granted'}.`,
    ),
  );
  const revoke = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke the lease of ${agent.id} on ${grant}` }, 'Revoke');
  revoke.disabled = !active;
  revoke.addEventListener('click', () =>
    act(
      revoke,
      async () => {
        await api('DELETE', path);
        await reload();
      },
      `Lease of ${agent.id} on ${grant} revoked.`,
    ),
  );
  const state =
    lease && lease.state !== 'pending'
      ? [h('span', { class: `badge ${active ? 'ok' : 'bad'}` }, lease.state), ' ', active ? ['ends ', when(lease.expires_at)] : null]
      : h('span', { class: 'muted' }, 'none yet');
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, grant),
    h('td', {}, state),
    h('td', {}, h('div', { class: 'actions' }, h('label', { for: ttlId, class: 'inline' }, 'TTL'), ttl, put, revoke)),
  );
}
