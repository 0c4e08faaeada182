// Grants as a wallet: one card per connected account or stored secret, its status at a glance (in
// words, not only colour), both clocks (the token's expiry and each agent's lease), last use, scopes
// and account; with connect (OAuth through the admin callback), add a static grant, set or replace
// a secret (grant-forms.js), refresh, revoke and delete.

import { api } from './api.js';
import { act, append, h, localTimes, notify, when } from './dom.js';
import { addGrantForm, loadSecretHelp, secretForm } from './grant-forms.js';
import { statusClass, statusLabel } from './grant-status.js';

export async function renderGrants(main) {
  const list = h('div', { class: 'cards', id: 'grant-list' });
  const load = async () => {
    const [{ grants }, help] = await Promise.all([api('GET', '/api/grants'), loadSecretHelp()]);
    list.replaceChildren(
      ...(grants.length
        ? grants.map((g) => card(g, load, help.get(g.type)))
        : [h('p', { class: 'muted' }, 'No grants yet. Connect an account or add one above, or use `keyway grants add`.')]),
    );
  };
  main.append(connectForm(), addGrantForm(load), h('h2', { class: 'visually-hidden' }, 'Your grants'), list);
  await load();
}

/** `secretHelp`: what its type's secret is, beside the field that sets it. */
function card(grant, reload, secretHelp) {
  const status = statusLabel(grant.display_status);
  const headingId = `grant-${grant.id}`;
  const row = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
  // A login_capture grant: its agents' captured logins (never a value).
  const captured = (grant.captured ?? []).map((c) =>
    h(
      'li',
      {},
      `${c.agent}: ${c.fields.join(', ')}, captured `,
      when(c.captured_at),
      c.expires_at ? [', expires ', when(c.expires_at)] : null,
      ', last used ',
      when(c.last_used_at),
    ),
  );
  const leases = (grant.leases ?? []).map((l) => h('li', {}, `${l.agent}: ${l.state}`, l.state === 'active' ? [', ends ', when(l.expires_at)] : null));
  const account = grant.account ?? grant.account_identity ?? null;
  const accountText = account && typeof account === 'object' ? (account.email ?? account.name ?? account.id ?? JSON.stringify(account)) : account;
  const buttons = h('div', { class: 'actions' });
  const canRefresh = grant.provider !== null && grant.provider !== undefined;
  if (canRefresh)
    buttons.append(
      button(
        'Refresh',
        `Refresh ${grant.id} now`,
        async () => {
          await api('POST', `/api/grants/${encodeURIComponent(grant.id)}/refresh`);
          await reload();
        },
        `Refreshed ${grant.id}.`,
      ),
    );
  if (grant.status !== 'revoked')
    buttons.append(
      button(
        'Revoke',
        `Revoke ${grant.id}`,
        async () => {
          if (!confirm(`Revoke ${grant.id}? Agents lose it at once${canRefresh ? ' and the provider is told' : ''}.`)) throw cancelled();
          await api('POST', `/api/grants/${encodeURIComponent(grant.id)}/revoke`);
          await reload();
        },
        `Revoked ${grant.id}.`,
        'danger',
      ),
    );
  // Only the store's grants can be deleted here; one from the config is removed there (the API
  // refuses with 409). A capture grant of the config can still forget the logins captured for it.
  if (grant.source === 'store')
    buttons.append(
      button(
        'Delete',
        `Delete ${grant.id}`,
        async () => {
          if (!confirm(`Delete ${grant.id} and its stored secret? This cannot be undone.`)) throw cancelled();
          await api('DELETE', `/api/grants/${encodeURIComponent(grant.id)}`);
          await reload();
        },
        `Deleted ${grant.id}.`,
        'danger',
      ),
    );
  else if (grant.type === 'login_capture')
    buttons.append(
      button(
        'Forget logins',
        `Forget the logins captured for ${grant.id}`,
        async () => {
          if (!confirm(`Forget every login captured for ${grant.id}? Its agents log in again.`)) throw cancelled();
          await api('DELETE', `/api/grants/${encodeURIComponent(grant.id)}`);
          await reload();
        },
        `Forgot the logins captured for ${grant.id}.`,
        'danger',
      ),
    );
  return h(
    'article',
    { class: `card grant status-${statusClass(status)}`, 'aria-labelledby': headingId, 'data-grant': grant.id },
    h('header', {}, h('h3', { id: headingId }, grant.id), h('span', { class: `badge ${statusClass(status)}` }, status)),
    // Why, in the API's words, its times shown in local time: also which agent's lease ends soon.
    grant.status_detail && grant.status_detail !== status ? h('p', { class: 'detail' }, localTimes(grant.status_detail)) : null,
    append(h('dl', {}), [
      // A static secret (no provider) belongs to no account keyway could know: no row, not "unknown".
      accountText ? row('Account', String(accountText)) : canRefresh ? row('Account', h('span', { class: 'muted' }, 'unknown')) : [],
      row('Type', grant.type, grant.provider ? ` (${grant.provider})` : ''),
      row('Domains', (grant.domains ?? []).join(', ')),
      grant.inject ? row('Injects', grant.inject) : [],
      row('Scopes', grant.scopes?.length ? grant.scopes.join(' ') : h('span', { class: 'muted' }, '—')),
      row('Token expires', grant.token_expires_at ? when(grant.token_expires_at) : h('span', { class: 'muted' }, 'does not expire')),
      // A client certificate (mTLS): whose, and its own clock (listings warn 14 days ahead).
      grant.client_certificate ? row('Client certificate', `${grant.client_certificate.subject}, expires `, when(grant.client_certificate.expires_at)) : [],
      row('Leases', leases.length ? h('ul', { class: 'plain' }, leases) : h('span', { class: 'muted' }, 'none')),
      grant.captured ? row('Captured logins', captured.length ? h('ul', { class: 'plain' }, captured) : h('span', { class: 'muted' }, 'none yet')) : [],
      row('Last used', when(grant.last_used_at)),
      grant.last_refreshed_at ? row('Last refresh', when(grant.last_refreshed_at)) : [],
      grant.labels && Object.keys(grant.labels).length
        ? row(
            'Labels',
            Object.entries(grant.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(', '),
          )
        : [],
    ]),
    grant.source === 'store'
      ? secretForm(grant, reload, secretHelp)
      : h(
          'p',
          { class: 'help muted' },
          grant.type === 'login_capture'
            ? ''
            : grant.secret_from?.startsWith('cmd: ')
              ? `Its secret is printed by the command ${grant.secret_from.slice(5)}, named in the config (grants.${grant.id}.secret). `
              : `Its secret comes from the config (grants.${grant.id}.secret). `,
          `It is defined in the config (grants.${grant.id}): remove it there to delete it.`,
        ),
    buttons,
  );
}

function cancelled() {
  const err = new Error('Cancelled.');
  err.hint = null;
  return err;
}

function button(text, label, work, done, kind = '') {
  const el = h('button', { type: 'button', class: kind, 'aria-label': label }, text);
  el.addEventListener('click', () => act(el, work, done));
  return el;
}

/** Connect an account by OAuth: keyway gives the consent URL; the provider sends the browser back to keyway's callback. */
function connectForm() {
  const field = (id, label, help, attrs = {}) => [
    h('label', { for: id }, label),
    h('input', { id, name: id, type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-help`, ...attrs }),
    h('p', { id: `${id}-help`, class: 'help muted' }, help),
  ];
  const submit = h('button', { type: 'submit' }, 'Connect');
  const form = h(
    'form',
    { class: 'connect', 'aria-labelledby': 'connect-title' },
    h('h2', { id: 'connect-title' }, 'Connect an account'),
    h(
      'div',
      { class: 'fields' },
      h('div', {}, field('connect-provider', 'Provider', 'A preset (github, google, …) or a provider in the config.', { required: true })),
      h('div', {}, field('connect-grant', 'Grant id', 'Optional: defaults to the provider’s name.')),
      h('div', {}, field('connect-scopes', 'Scopes', 'Optional, separated by spaces.')),
    ),
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const scopes = value('connect-scopes').split(/\s+/).filter(Boolean);
    void act(submit, async () => {
      const body = { provider: value('connect-provider') };
      if (value('connect-grant')) body.grant = value('connect-grant');
      if (scopes.length) body.scopes = scopes;
      const { consent_url: consentUrl } = await api('POST', '/api/oauth/connect', body);
      const url = new URL(consentUrl);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('the consent URL is not a web address');
      notify('Opening the provider’s consent page…');
      location.assign(url.href);
    });
  });
  return form;
}
