// The page the OAuth callback answers with: small, self-contained (no script, no external asset),
// under a Content-Security-Policy that allows only its own inline style. It never carries a token,
// a code or the state, and the browser is told not to send the callback URL (which holds the code)
// on as a Referer when the person follows the link back.

import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

const STYLE = 'body{font-family:system-ui,sans-serif;margin:3em auto;max-width:36em;padding:0 1em;line-height:1.5}h1{font-size:1.4em}';
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

export const CALLBACK_PAGE_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export function sendCallbackPage(res: ServerResponse, status: number, title: string, text: string): void {
  const html = `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>keyway: ${escapeHtml(title)}</title><style>${STYLE}</style><body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p><p><a href="/#/grants">Back to keyway’s grants</a></p></main></body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'content-security-policy': CALLBACK_PAGE_CSP,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(html);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
