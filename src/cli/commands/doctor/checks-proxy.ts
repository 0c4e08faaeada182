// Whether the proxy listens, and whether the admin API answers /healthz.

import { once } from 'node:events';
import { http } from '../../../net/node-http.ts';
import { connect as netConnect } from 'node:net';
import { formatListen } from '../../../config/index.ts';
import { adminAddress } from '../../proxy-url.ts';
import { usageError } from '../../io.ts';
import { errCode, MAX_OUTPUT, readBody, type CheckResult, type Context } from './context.ts';

export async function checkProxy(ctx: Context): Promise<CheckResult> {
  const where = formatListen(ctx.proxy);
  const check = 'proxy';
  try {
    const socket = netConnect(ctx.proxy.port, ctx.proxy.host);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), 3000);
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  } catch (err) {
    return {
      check,
      status: 'fail',
      detail: `nothing answers at ${where} (${errCode(err)})`,
      fix: `start keyway (\`keyway start\`), or pass --proxy HOST:PORT if it listens elsewhere`,
    };
  }
  return { check, status: 'ok', detail: `answers at ${where}` };
}

export async function checkAdmin(ctx: Context): Promise<CheckResult> {
  const check = 'admin API';
  const given = ctx.args.string('admin');
  if (given === undefined && !ctx.config.admin.enabled) return { check, status: 'skip', detail: 'admin.enabled is false' };
  const known = given === undefined ? adminAddress(ctx.config) : undefined;
  if (given === undefined && known === undefined) {
    return {
      check,
      status: 'skip',
      detail: 'admin.listen has port 0 (chosen at start) and no running keyway announced it: pass --admin http://HOST:PORT to check it',
    };
  }
  let base: URL;
  try {
    base = new URL(given ?? `http://${known}`);
  } catch {
    throw usageError(`--admin: expected http://HOST:PORT, got "${given}"`);
  }
  const url = new URL('/healthz', base);
  try {
    const { status, body } = await getJson(url, 3000);
    const audit = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['audit'] : undefined;
    if (status === 200) return { check, status: 'ok', detail: `${url.href} answers 200` };
    if (status === 503 && audit === 'unavailable') {
      return {
        check,
        status: 'fail',
        detail: `${url.href} answers 503: the audit log cannot be written, so keyway forwards nothing`,
        fix: 'check that logs/ is writable and the disk is not full',
      };
    }
    return { check, status: 'fail', detail: `${url.href} answers ${status}`, fix: 'is another program listening on the admin port?' };
  } catch (err) {
    return {
      check,
      status: 'fail',
      detail: `nothing answers at ${url.href} (${errCode(err)})`,
      fix: 'start keyway, or pass --admin http://HOST:PORT if it listens elsewhere',
    };
  }
}

function getJson(url: URL, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      readBody(res, MAX_OUTPUT).then((text) => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      }, reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}
