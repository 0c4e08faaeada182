// keyway's own check through the proxy: CONNECT, TLS trusting keyway's CA alone, one GET.

import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { http } from '../../../net/node-http.ts';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { formatListen } from '../../../config/index.ts';
import { noAgentLine } from '../../agent-hint.ts';
import { SELF_CHECK_HOST, SELF_CHECK_PATH } from '../../../proxy/self-check.ts';
import { errCode, MAX_OUTPUT, readBody, type CheckResult, type Context } from './context.ts';

/**
 * CONNECT to the target through the proxy, TLS trusting keyway's CA alone, then GET the path. This
 * shows that the proxy intercepts the target with a certificate from certs/ca.pem (a blind tunnel
 * to the real host, or a proxy running with another CA, fails the handshake).
 */
export async function checkThroughProxy(ctx: Context, caPem: string, check: string): Promise<CheckResult> {
  const { target } = ctx;
  const authority = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
  const sockets: Array<Socket | TLSSocket> = [];
  const timer = setTimeout(
    () => {
      for (const s of sockets) s.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    },
    Math.min(ctx.timeoutMs, 10_000),
  );
  try {
    // 1. CONNECT.
    const headers: Record<string, string> = { host: authority };
    if (ctx.agent) headers['proxy-authorization'] = `Basic ${Buffer.from(`${ctx.agent.id}:${ctx.agent.key}`).toString('base64')}`;
    const connectReq = http.request({ host: ctx.proxy.host, port: ctx.proxy.port, method: 'CONNECT', path: authority, headers, agent: false });
    connectReq.on('socket', (s) => sockets.push(s));
    connectReq.end();
    const [res, socket] = (await once(connectReq, 'connect')) as [IncomingMessage, Socket, Buffer];
    sockets.push(socket);
    if (res.statusCode !== 200) {
      const code = res.headers['x-keyway-error'];
      socket.destroy();
      if (res.statusCode === 407) {
        return {
          check,
          status: 'fail',
          detail: `the proxy asked for agent credentials (407)`,
          fix: noAgentLine('doctor'),
        };
      }
      return {
        check,
        status: 'fail',
        detail: `CONNECT ${authority} got ${res.statusCode}${typeof code === 'string' ? ` ${code}` : ''}`,
        fix: target.selfCheck
          ? `this keyway does not answer ${SELF_CHECK_HOST} itself (an older version?); pass --url https://HOST/ for a host one of your grants covers`
          : `check that a grant the agent may use covers ${target.host}`,
      };
    }
    // 2. TLS, trusting keyway's CA and nothing else.
    const tlsSocket = tlsConnect({ socket, ca: [caPem], ...(isIP(target.host) === 0 ? { servername: target.host } : {}), ALPNProtocols: ['http/1.1'] });
    sockets.push(tlsSocket);
    try {
      await once(tlsSocket, 'secureConnect');
    } catch (err) {
      return {
        check,
        status: 'fail',
        detail: `the certificate presented for ${target.host} is not one keyway's CA (certs/ca.pem) signed (${errCode(err)})`,
        fix: target.selfCheck
          ? 'the proxy at this address runs with another CA: is it another keyway home (--home), or another proxy?'
          : `keyway tunnels ${target.host} instead of intercepting it: add a grant covering it, or use the agent (--agent) that may use it`,
      };
    }
    // 3. The test request.
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: target.host,
          port: target.port,
          path: `${target.url.pathname}${target.url.search}`,
          method: 'GET',
          createConnection: () => tlsSocket,
          headers: { host: target.url.host, connection: 'close' },
        },
        (r) => void readBody(r, MAX_OUTPUT).then((text) => resolve({ status: r.statusCode ?? 0, text }), reject),
      );
      req.on('error', reject);
      req.end();
    });
    if (!target.selfCheck)
      return { check, status: 'ok', detail: `with a certificate from keyway's CA; GET ${target.url.pathname} answered ${response.status}` };
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(response.text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    if (response.status !== 200 || body?.['ok'] !== true || body['service'] !== 'keyway') {
      return {
        check,
        status: 'fail',
        detail: `GET https://${SELF_CHECK_HOST}${SELF_CHECK_PATH} answered ${response.status}, not keyway's self-check`,
        fix: `this keyway does not answer ${SELF_CHECK_HOST} itself; pass --url https://HOST/ for a host one of your grants covers`,
      };
    }
    const agent = typeof body['agent'] === 'string' ? `, as agent ${body['agent']}` : '';
    return { check, status: 'ok', detail: `with a certificate from keyway's CA${agent}` };
  } catch (err) {
    return {
      check,
      status: 'fail',
      detail: `the check through ${formatListen(ctx.proxy)} failed (${errCode(err)})`,
      fix: 'is the program at the proxy address keyway?',
    };
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
  }
}
