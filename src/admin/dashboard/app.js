// The dashboard's shell: signs in (or finds the session the cookie already carries), then shows one
// section at a time by the URL's hash (#/grants), so the back button and bookmarks work.

import { api, setCsrf, whenSignedOut } from './api.js';
import { renderAgents } from './agents.js';
import { renderApprovals, watchPending } from './approvals.js';
import { renderAudit } from './audit.js';
import { clearNotice, h, notify } from './dom.js';
import { renderGrants } from './grants.js';
import { renderOverview } from './overview.js';
import { renderPolicy } from './policy.js';
import { renderSignIn } from './signin.js';
import { renderSpend } from './spend.js';

const SECTIONS = {
  overview: { title: 'Overview', render: renderOverview },
  grants: { title: 'Grants', render: renderGrants },
  agents: { title: 'Agents', render: renderAgents },
  approvals: { title: 'Approvals', render: renderApprovals },
  audit: { title: 'Audit', render: renderAudit },
  spend: { title: 'Spend', render: renderSpend },
  policy: { title: 'Policy', render: renderPolicy },
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');
let signedIn = false;
/** The pending-approvals badge's timer, while signed in. */
let badgeTimer;
/** What the section on screen must stop when it goes (an event stream, a timer). */
let leave = () => {};
/** A notice for the section shown next (after signing in: the overview), not the one left. */
let nextNotice;

function sectionName() {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
  return Object.hasOwn(SECTIONS, name) ? name : 'overview';
}

async function show() {
  leave();
  leave = () => {};
  // A notice belongs to the section it was raised on: "Approved once." must not follow elsewhere.
  clearNotice();
  const note = nextNotice;
  nextNotice = undefined;
  if (note) notify(...note);
  if (!signedIn) {
    clearInterval(badgeTimer);
    badgeTimer = undefined;
    return showSignIn();
  }
  badgeTimer ??= watchPending();
  const name = sectionName();
  const section = SECTIONS[name];
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${section.title} · keyway`;
  const heading = h('h1', { tabindex: '-1' }, section.title);
  main.replaceChildren(heading);
  try {
    leave = (await section.render(main)) ?? (() => {});
  } catch (err) {
    main.append(h('p', { class: 'error', role: 'alert' }, `Could not load ${section.title.toLowerCase()}: ${err?.message ?? err}`));
  }
}

/** GET /api/session's answer at load: where the token is, for the sign-in page. */
let signedOutAnswer = {};

function showSignIn() {
  nav.hidden = true;
  signOut.hidden = true;
  document.title = 'Sign in · keyway';
  renderSignIn(
    main,
    (session) => {
      setCsrf(session.csrf);
      signedIn = true;
      nav.hidden = false;
      signOut.hidden = false;
      nextNotice = ['Signed in.'];
      if (location.hash === '' || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/overview';
      else void show();
    },
    signedOutAnswer,
  );
}

whenSignedOut(() => {
  if (!signedIn) return;
  signedIn = false;
  setCsrf('');
  nextNotice = ['Your session ended; sign in again.', 'error'];
  void show();
});

signOut.addEventListener('click', async () => {
  try {
    await api('DELETE', '/api/session');
  } finally {
    signedIn = false;
    setCsrf('');
    nextNotice = ['Signed out.'];
    void show();
  }
});

window.addEventListener('hashchange', () => {
  void show().then(() => main.querySelector('h1')?.focus());
});

// A reload keeps the session: the cookie, and the CSRF token in this origin's storage.
try {
  const session = await api('GET', '/api/session');
  signedOutAnswer = session ?? {};
  if (session?.signed_in) {
    signedIn = true;
    nav.hidden = false;
    signOut.hidden = false;
  }
} catch {
  // keyway unreachable: the sign-in page says so when it is used.
}
void show();
