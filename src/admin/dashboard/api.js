// Calls to the admin API from the page. The session cookie goes along by itself; every call also
// carries the session's CSRF token, which only this origin knows: it came from sign-in and is kept in
// localStorage, which browsers keep apart by port, unlike cookies (so another server on 127.0.0.1
// that this browser visits gets the cookie, but not the token, and the cookie alone reads nothing).

const CSRF_KEY = 'keyway.csrf';
let csrf = localStorage.getItem(CSRF_KEY) ?? '';
let onSignedOut = () => {};

export function setCsrf(token) {
  csrf = token;
  if (token) localStorage.setItem(CSRF_KEY, token);
  else localStorage.removeItem(CSRF_KEY);
}

/** For the event stream, which a browser opens without custom headers: it goes as `csrf` in the query. */
export function csrfToken() {
  return csrf;
}

/** What to do when the API says the session is gone (expired, signed out elsewhere, restart). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export class ApiError extends Error {
  constructor(status, code, message, hint) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

/** `method path` with a JSON body for writes; resolves to the parsed answer, throws ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json', 'x-keyway-csrf': csrf };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json') ? await res.json() : null;
  if (res.ok) return json;
  const error = json?.error ?? {};
  if ((res.status === 401 || error.code === 'csrf_required') && path !== '/api/session') onSignedOut();
  throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? res.statusText, error.hint ?? null);
}

/** A path with query parameters, the empty ones left out. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') query.set(name, String(value));
  const text = query.toString();
  return text === '' ? path : `${path}?${text}`;
}
