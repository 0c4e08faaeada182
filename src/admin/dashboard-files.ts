// The dashboard's files (src/admin/dashboard/, copied beside this module into dist/ by the build),
// served by the admin listener itself: machines running keyway may have no internet, and a page
// that loads nothing from elsewhere can have a strict Content-Security-Policy. The files hold no
// secret, so they are served without the token: the sign-in page is one of them.

import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inSingleExecutable, packagedFile, packagedNames } from '../process/own-program.ts';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Scripts and styles from this origin only, none inline; nothing may frame the page (clickjacking);
 * no plugins, no <base> rewriting, forms post only here. Sent on every admin answer, JSON included.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
}

interface DashboardFile {
  type: string;
  body: Buffer;
}

export type DashboardFiles = (method: string, path: string, res: ServerResponse) => boolean;

/**
 * `/` is the page; `/assets/<name>` one of the files in the folder, read once at start. Names come
 * from the folder listing, never from the request, so no path can reach outside it. Returns false
 * when the path is not the dashboard's.
 */
export function dashboardFiles(folder = fileURLToPath(new URL('./dashboard/', import.meta.url))): DashboardFiles {
  const files = new Map<string, DashboardFile>();
  // The single executable has no folder: the files are its assets, `dashboard/<name>` (process/own-program.ts).
  const packaged = inSingleExecutable();
  let names: string[] = packaged ? packagedNames('dashboard') : [];
  if (!packaged) {
    try {
      names = readdirSync(folder);
    } catch {
      // A build without the folder: the API works, `/` says what is missing.
    }
  }
  for (const name of names) {
    const type = CONTENT_TYPES[extname(name)];
    if (type)
      files.set(name, { type, body: packaged ? packagedFile(`dashboard/${name}`, pathToFileURL(join(folder, name))) : readFileSync(join(folder, name)) });
  }
  return (method, path, res) => {
    if (path !== '/' && !path.startsWith('/assets/')) return false;
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', Buffer.from('the dashboard answers GET\n'), { allow: 'GET, HEAD' });
      return true;
    }
    const file = files.get(path === '/' ? 'index.html' : path.slice('/assets/'.length));
    if (!file) {
      const missing = path === '/' ? `the dashboard files are missing from ${folder}; rebuild keyway (npm run build)\n` : 'no such dashboard file\n';
      send(res, 404, 'text/plain; charset=utf-8', Buffer.from(missing));
      return true;
    }
    send(res, 200, file.type, method === 'HEAD' ? Buffer.alloc(0) : file.body, {}, file.body.length);
    return true;
  };
}

function send(res: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string> = {}, length = body.length): void {
  res.writeHead(status, { 'content-type': type, 'content-length': length, 'cache-control': 'no-cache', ...headers });
  res.end(body);
}
