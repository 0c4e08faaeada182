// The agents page's writes: add an agent (POST /api/agents), rotate its key
// (POST /api/agents/{agent}/rotate-key), change the grants it may use (PATCH /api/agents/{agent}).
// Adding and rotating answer with the agent's proxy URL, key included: it is shown once, in one
// panel, until the person says they have it; keyway keeps only a hash, so no later read can show it.

import { api } from './api.js';
import { act, h, notify } from './dom.js';

/** Ticks for the grants an agent may use; "every grant" (`['*']`) stands alone. `current` undefined: every grant. */
export function grantChoice(idPrefix, grants, current) {
  const every = current === undefined || current.includes('*');
  const all = h('input', { id: `${idPrefix}-every`, type: 'checkbox', checked: every });
  const boxes = grants.map((g) =>
    h('input', { id: `${idPrefix}-grant-${g.id}`, type: 'checkbox', value: g.id, checked: !every && current.includes(g.id), disabled: every }),
  );
  const sync = () => {
    for (const box of boxes) box.disabled = all.checked;
  };
  all.addEventListener('change', sync);
  const element = h(
    'fieldset',
    { class: 'grant-choice' },
    h('legend', {}, 'Grants it may use'),
    h('div', { class: 'check' }, all, h('label', { for: all.id, class: 'inline' }, 'Every grant, present and future')),
    boxes.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id, class: 'inline' }, box.value))),
    grants.length === 0 ? h('p', { class: 'help muted' }, 'No grant exists yet.') : null,
  );
  return { element, sync, value: () => (all.checked ? ['*'] : boxes.filter((b) => b.checked).map((b) => b.value)) };
}

/**
 * Where a proxy URL with its key is shown, once: `show` fills it and moves focus there; "I have
 * copied it" empties it (and leaving the page does too, since the page is rebuilt).
 */
export function keyPanel() {
  const panel = h('section', { id: 'agent-key', class: 'once', 'aria-labelledby': 'agent-key-title', tabindex: '-1' });
  panel.hidden = true;
  const clear = () => {
    panel.replaceChildren();
    panel.hidden = true;
  };
  const show = (agentId, proxyUrl, note) => {
    const url = h('code', { id: 'agent-key-url', class: 'secret-value' }, proxyUrl);
    const copy = h('button', { type: 'button' }, 'Copy');
    copy.addEventListener('click', () =>
      act(
        copy,
        async () => {
          await navigator.clipboard.writeText(proxyUrl);
        },
        'Copied the proxy URL.',
      ),
    );
    const done = h('button', { type: 'button' }, 'I have copied it');
    done.addEventListener('click', () => {
      clear();
      notify(`The key of ${agentId} is no longer on the page.`);
    });
    panel.replaceChildren(
      h('h2', { id: 'agent-key-title', class: 'form-title' }, `Proxy URL of ${agentId}: shown once`),
      h('p', {}, 'Set it as HTTPS_PROXY (and HTTP_PROXY) for this agent. It holds the agent’s key; keyway keeps only a hash and cannot show it again.'),
      note ? h('p', { class: 'warn-text' }, note) : null,
      h('p', {}, url),
      h('div', { class: 'actions' }, copy, done),
    );
    panel.hidden = false;
    panel.focus();
  };
  return { element: panel, show, clear };
}

export function addAgentForm(grants, keys, onAdded) {
  const text = (id, attrs = {}) => h('input', { id, name: id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
  const field = (id, label, input, help) => h('div', {}, h('label', { for: id }, label), input, h('p', { id: `${id}-help`, class: 'help muted' }, help));
  // Nothing ticked: a new agent gets the grants a person chooses for it, not every one by default.
  const choice = grantChoice('new-agent', grants, []);
  const submit = h('button', { type: 'submit' }, 'Add agent');
  const alert = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { class: 'connect', 'aria-labelledby': 'add-agent-title' },
    h('h2', { id: 'add-agent-title', class: 'form-title' }, 'Add an agent'),
    h(
      'div',
      { class: 'fields' },
      field(
        'new-agent-id',
        'New agent id',
        text('new-agent-id', { required: true, 'aria-describedby': 'new-agent-id-help' }),
        'a-z, 0-9 and -, such as claude.',
      ),
      field(
        'new-agent-lease',
        'Lease TTL',
        text('new-agent-lease', { 'aria-describedby': 'new-agent-lease-help' }),
        'Optional: each grant needs a lease this long (1h).',
      ),
      field(
        'new-agent-max',
        'Longest lease',
        text('new-agent-max', { 'aria-describedby': 'new-agent-max-help' }),
        'Optional: a renewal never goes past it (8h).',
      ),
    ),
    choice.element,
    submit,
    alert,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    submit.disabled = true;
    alert.textContent = '';
    void (async () => {
      try {
        const body = { id: value('new-agent-id') };
        const chosen = choice.value();
        if (!chosen.includes('*')) body.grants = chosen;
        if (value('new-agent-lease')) body.lease_ttl = value('new-agent-lease');
        if (value('new-agent-max')) body.max_lease_ttl = value('new-agent-max');
        const answer = await api('POST', '/api/agents', body);
        form.reset();
        choice.sync();
        await onAdded();
        keys.show(body.id, answer.proxy_url, answer.first_agent ? 'This is the first agent: clients without a proxy key are refused from now on.' : '');
        notify(`Added agent ${body.id}.`);
      } catch (err) {
        alert.textContent = err?.hint ? `${err.message} (${err.hint})` : (err?.message ?? String(err));
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return form;
}

/** Rotate key and edit grants, for an agent kept in the store (a config agent is changed in the config). */
export function agentActions(agent, grants, keys, reload) {
  const path = `/api/agents/${encodeURIComponent(agent.id)}`;
  const rotate = h('button', { type: 'button', 'aria-label': `Rotate the key of ${agent.id}` }, 'Rotate key');
  rotate.addEventListener('click', () =>
    act(rotate, async () => {
      if (!confirm(`Give ${agent.id} a new key? Its current proxy URL is refused from now on.`)) throw Object.assign(new Error('Cancelled.'), { hint: null });
      const answer = await api('POST', `${path}/rotate-key`);
      await reload();
      keys.show(agent.id, answer.proxy_url, '');
      notify(`New key for ${agent.id}; the old one is refused.`);
    }),
  );
  const choice = grantChoice(`edit-${agent.id}`, grants, agent.grants);
  const save = h('button', { type: 'submit', 'aria-label': `Save the grants of ${agent.id}` }, 'Save grants');
  const form = h('form', { class: 'edit-grants' }, choice.element, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(
      save,
      async () => {
        await api('PATCH', path, { grants: choice.value() });
        await reload();
      },
      `Grants of ${agent.id} saved.`,
    );
  });
  return h(
    'div',
    { class: 'agent-actions' },
    h('div', { class: 'actions' }, rotate),
    h('details', {}, h('summary', {}, `Edit the grants of ${agent.id}`), form),
  );
}
