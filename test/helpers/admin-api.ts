// Calls to a test proxy's admin API with its token, for the admin route tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProxy } from './keyway.ts';
import { slack } from './load.ts';

export interface AdminCall {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: unknown;
  text: string;
}

export interface AdminClient {
  readonly base: string;
  readonly token: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AdminCall>;
}

export function adminClient(proxy: TestProxy): AdminClient {
  const address = proxy.running.adminAddress;
  if (!address) throw new Error('the test proxy has no admin listener');
  const base = `http://127.0.0.1:${address.port}`;
  const token = readFileSync(join(proxy.home, 'data', 'admin.token'), 'utf8').trim();
  return {
    base,
    token,
    async call(method, path, body, headers = {}) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(slack(10_000)),
      });
      const text = await res.text();
      let parsed: unknown = text;
      if ((res.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text);
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
  };
}
