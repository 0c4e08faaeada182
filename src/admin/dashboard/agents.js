// Agents with the grants they may use and their leases: grant or renew a lease (for a TTL, capped by
// the agent's max_lease_ttl on the server), revoke it at once; add an agent, rotate its key and
// change its grants (agent-forms.js).

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
    holder.replaceChildren(
      ...(agents.length
        ? agents.map((a) => agentSection(a, grants, keys, load))
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

function agentSection(agent, grants, keys, reload) {
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
  return h(
    'section',
    { class: 'card agent', 'aria-labelledby': headingId, 'data-agent': agent.id },
    h('header', {}, h('h2', { id: headingId }, agent.id), h('span', { class: 'muted' }, facts.join(' · '))),
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
  );
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
