// The approvals inbox: requests an agent rule sent to a person (approve: human), newest first, each
// with what a person needs to decide (agent, a delegated agent's chain, grant, method and path, the agent's stated purpose, a
// redacted preview of the body, the rule, when it expires), and the three answers: once, for a
// window (optionally widened to the rule's paths), or deny with a reason. Polled every second while
// open: a held request waits on this page, and answers given elsewhere (the CLI, another replica)
// take items away. Recent answers below.

import { api } from './api.js';
import { act, h, plural, when } from './dom.js';

const POLL_MS = 1_000;

export async function renderApprovals(main) {
  const inbox = h('div', { id: 'approval-inbox', class: 'stack', 'aria-live': 'polite' });
  const recent = h('div', { id: 'approval-recent' });
  main.append(
    h(
      'p',
      { class: 'muted' },
      'Requests waiting for a yes. A held request waits until you answer or its wait runs out; one asked with wait: 0 is retried by the agent once you approve it.',
    ),
    inbox,
    h('h2', {}, 'Recent answers'),
    recent,
  );
  // Forms being filled in stay as they are while the list refreshes around them.
  const shown = new Map();
  const load = async () => {
    const { approvals } = await api('GET', '/api/approvals?state=all');
    const pending = approvals.filter((a) => a.state === 'pending');
    for (const [id, card] of shown) {
      if (!pending.some((a) => a.id === id)) {
        card.remove();
        shown.delete(id);
      }
    }
    for (const approval of pending.slice().reverse()) {
      if (shown.has(approval.id)) continue;
      const card = approvalCard(approval, load);
      shown.set(approval.id, card);
      inbox.prepend(card);
    }
    const empty = inbox.querySelector('.empty');
    if (pending.length === 0 && !empty) inbox.append(h('p', { class: 'muted empty' }, 'Nothing is waiting for an answer.'));
    if (pending.length > 0) empty?.remove();
    recent.replaceChildren(recentTable(approvals.filter((a) => a.state !== 'pending').slice(0, 20)));
    setBadge(pending.length);
  };
  await load();
  const timer = setInterval(() => void load().catch(() => undefined), POLL_MS);
  return () => clearInterval(timer);
}

function approvalCard(a, reload) {
  const headingId = `approval-${a.id}`;
  const windowDefault = a.window_ms > 0 ? `${Math.round(a.window_ms / 60_000)}m` : '15m';
  const forInput = h('input', { type: 'text', name: 'for', value: windowDefault, size: '6', 'aria-label': `Window for ${a.id}` });
  const pattern = h('input', { type: 'checkbox', name: 'pattern', id: `${headingId}-pattern` });
  const reason = h('input', { type: 'text', name: 'reason', placeholder: 'reason (shown to the agent)', 'aria-label': `Reason to deny ${a.id}` });
  const answer = (button, path, body, done) =>
    act(
      button,
      async () => {
        await api('POST', `/api/approvals/${encodeURIComponent(a.id)}/${path}`, body);
        await reload();
      },
      done,
    );
  const once = h('button', { type: 'button', class: 'approve-once' }, 'Approve once');
  once.addEventListener('click', () => answer(once, 'approve', {}, `Approved ${a.id} once.`));
  const forWindow = h('button', { type: 'button', class: 'approve-window' }, 'Approve for');
  forWindow.addEventListener('click', () =>
    answer(forWindow, 'approve', { for: forInput.value.trim(), pattern: pattern.checked }, `Approved ${a.id} for ${forInput.value.trim()}.`),
  );
  const deny = h('button', { type: 'button', class: 'danger deny' }, 'Deny');
  deny.addEventListener('click', () => answer(deny, 'deny', reason.value.trim() ? { reason: reason.value.trim() } : {}, `Denied ${a.id}.`));
  return h(
    'section',
    { class: 'card approval', 'aria-labelledby': headingId, 'data-approval': a.id, 'data-path': a.path },
    h(
      'header',
      {},
      h('h2', { id: headingId }, `${a.method} ${where(a)}`),
      h(
        'span',
        { class: 'muted' },
        `agent ${agentNamed(a)} · grant ${a.grant} · `,
        a.holder ? 'held · expires ' : 'waiting for a retry · expires ',
        when(a.expires_at),
      ),
    ),
    a.purpose ? h('p', { class: 'purpose' }, h('span', { class: 'muted' }, 'purpose: '), a.purpose) : h('p', { class: 'muted' }, 'No purpose given.'),
    a.overrides ? h('p', { class: 'error' }, `Override headers: ${a.overrides}`) : null,
    a.body
      ? h(
          'div',
          { class: 'preview' },
          h('span', { class: 'muted' }, `body: ${plural(a.body.bytes, 'byte')}${a.body.type ? ` of ${a.body.type}` : ''}`),
          a.body.preview ? h('pre', {}, a.body.preview) : h('span', { class: 'muted' }, ' (not previewed)'),
        )
      : null,
    h('p', { class: 'muted rule' }, `asked by ${a.rule}`),
    h(
      'div',
      { class: 'actions' },
      once,
      forWindow,
      forInput,
      h('label', { for: `${headingId}-pattern`, class: 'check' }, pattern, 'all paths the rule allows'),
      reason,
      deny,
    ),
  );
}

function recentTable(list) {
  if (list.length === 0) return h('p', { class: 'muted' }, 'None in the last day.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      // stacks: on a narrow screen each answer is a block, each value beside its data-label (style.css).
      { class: 'stacks' },
      h('caption', { class: 'visually-hidden' }, 'Approvals answered or ended in the last day'),
      h('thead', {}, h('tr', {}, ...['Request', 'Agent', 'State', 'By', 'When'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        list.map((a) =>
          h(
            'tr',
            { 'data-approval': a.id, 'data-state': a.state },
            h('td', { 'data-label': 'Request', class: 'request' }, `${a.method} ${where(a)}`),
            h('td', { 'data-label': 'Agent' }, agentNamed(a)),
            h(
              'td',
              { 'data-label': 'State' },
              a.decision?.outcome === 'window' ? `${a.state} (window until ${new Date(a.decision.until).toLocaleString()})` : a.state,
            ),
            h('td', { 'data-label': 'By' }, a.decision?.by ?? '—'),
            h('td', { 'data-label': 'When' }, when(a.decision?.at ?? a.ended_at ?? a.asked_at)),
          ),
        ),
      ),
    ),
  );
}

/** The agent, or a delegated agent's chain root first (`lead > worker`): on whose behalf a yes acts. */
function agentNamed(a) {
  return a.chain ? a.chain.join(' > ') : a.agent;
}

/** host[:port]/path, the port left out when it is 443. */
function where(a) {
  return `${a.host}${a.port && a.port !== 443 ? `:${a.port}` : ''}${a.path}`;
}

/** The count of pending approvals beside the nav item, so a person on another page sees them. */
export function setBadge(count) {
  const link = document.querySelector('nav a[href="#/approvals"]');
  if (!link) return;
  let badge = link.querySelector('.count');
  if (count === 0) {
    badge?.remove();
    return;
  }
  if (!badge) {
    badge = h('span', { class: 'count', 'aria-label': `${count} waiting` });
    link.append(' ', badge);
  }
  badge.textContent = String(count);
  badge.setAttribute('aria-label', `${count} waiting`);
}

/** Keeps the badge current on every page (one light call every few seconds while signed in). */
export function watchPending() {
  const tick = () =>
    api('GET', '/api/approvals')
      .then(({ approvals }) => setBadge(approvals.length))
      .catch(() => undefined);
  void tick();
  return setInterval(tick, 5_000);
}
