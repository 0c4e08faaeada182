// Sign-in: the admin token typed once. It goes to POST /api/session and is then forgotten: the page
// keeps only the CSRF token, and the browser the HttpOnly session cookie.

import { api } from './api.js';
import { h } from './dom.js';

/** `where`: GET /api/session's answer while signed out (token_file or token_from_environment, on a loopback listener). */
export function renderSignIn(main, onSignedIn, where = {}) {
  const help = where.token_file
    ? `The token is in ${where.token_file}. It is sent once; the browser keeps only a session cookie.`
    : where.token_from_environment
      ? 'Use the token keyway was given in KEYWAY_ADMIN_TOKEN or KEYWAY_ADMIN_TOKEN_FILE. It is sent once; the browser keeps only a session cookie.'
      : 'The token is in data/admin.token under the keyway home (~/.keyway by default), or the one keyway was given in KEYWAY_ADMIN_TOKEN or KEYWAY_ADMIN_TOKEN_FILE. It is sent once; the browser keeps only a session cookie.';
  const error = h('p', { id: 'sign-in-error', class: 'error', role: 'alert' });
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help sign-in-error',
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in to keyway'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h('p', { id: 'token-help', class: 'muted' }, help),
    button,
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      const session = await api('POST', '/api/session', { token: input.value });
      input.value = '';
      onSignedIn(session);
    } catch (err) {
      error.textContent = err?.message ?? String(err);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}
