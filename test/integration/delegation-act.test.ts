import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify, SignJWT } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPES } from '../../src/credentials/types/token_exchange/exchange.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89 item 4: a delegated agent's token exchange carries its chain as RFC 8693 nested actors.
// A real loopback token endpoint checks what keyway sends: the client's Basic credentials, the
// subject token, and (when sent) an actor token of type jwt signed with the client secret, aimed at
// the endpoint; one signed with another key, of another type or past its time is refused. It
// issues an opaque token and remembers the `sub` and `act` it stands for; the upstream's echo shows
// which token reached it. A root agent's exchange carries no actor token, as before.

const CLIENT = 'keyway-exchanger';
const SECRET = `${CANARY}-exchanger-secret`;
const SUBJECT = 'service-subject-token-0f1e2d';
const API = 'api.example.test';

interface Issued {
  sub: string;
  act?: unknown;
}

describe('token exchange for a delegated agent: the chain in the act claim', () => {
  let endpoint: Server;
  let endpointUrl = '';
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const issued = new Map<string, Issued>();
  const actorTokens: string[] = [];
  const forms: URLSearchParams[] = [];
  const outputs: string[] = [];

  /** What the endpoint admits: the client, the subject, and an actor token only as keyway signs it. */
  async function exchange(form: URLSearchParams, authorization: string | undefined): Promise<{ status: number; body: unknown }> {
    if (authorization !== `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`) return { status: 401, body: { error: 'invalid_client' } };
    if (form.get('grant_type') !== TOKEN_EXCHANGE_GRANT || form.get('subject_token') !== SUBJECT || form.get('subject_token_type') !== TOKEN_TYPES.access_token)
      return { status: 400, body: { error: 'invalid_grant' } };
    const actor = form.get('actor_token');
    let act: unknown;
    if (actor !== null) {
      actorTokens.push(actor);
      if (form.get('actor_token_type') !== TOKEN_TYPES.jwt) return { status: 400, body: { error: 'invalid_request', error_description: 'actor_token_type' } };
      try {
        const { payload } = await jwtVerify(actor, new TextEncoder().encode(SECRET), {
          issuer: CLIENT,
          audience: endpointUrl,
          algorithms: ['HS256'],
          maxTokenAge: '5m',
        });
        // RFC 8693 4.1: the current actor outermost, the prior actors nested inside.
        act = payload['act'] === undefined ? { sub: payload.sub } : { sub: payload.sub, act: payload['act'] };
      } catch {
        return { status: 400, body: { error: 'invalid_grant', error_description: 'the actor token does not verify' } };
      }
    } else if (form.has('actor_token_type')) return { status: 400, body: { error: 'invalid_request' } };
    const token = `xt-${issued.size + 1}-${CANARY}`;
    issued.set(token, act === undefined ? { sub: 'service' } : { sub: 'service', act });
    return { status: 200, body: { access_token: token, issued_token_type: TOKEN_TYPES.access_token, token_type: 'Bearer', expires_in: 3600 } };
  }

  const post = async (form: URLSearchParams) => {
    const res = await fetch(endpointUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    endpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        forms.push(form);
        void exchange(form, req.headers.authorization).then(({ status, body: answer }) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer)),
        );
      });
    });
    endpoint.listen(0, '127.0.0.1');
    await once(endpoint, 'listening');
    endpointUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/token`;
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { EXCHANGER: JSON.stringify({ clientId: CLIENT, clientSecret: SECRET }), SUBJECT, LEAD_KEY: 'lead-key-act-0123456789' },
      config: {
        grants: {
          api: {
            type: 'token_exchange',
            domains: [API],
            token_endpoint: endpointUrl,
            subject: { secret: 'env:SUBJECT' },
            subject_token_type: 'access_token',
            audience: 'https://api.example.test',
            secret: 'env:EXCHANGER',
          },
        },
        agents: { lead: { key: 'env:LEAD_KEY', grants: ['api'] } },
      },
    });
  });

  afterAll(async () => {
    const texts = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')];
    for (const text of texts) {
      expect(findLeak(text, SECRET), 'the client secret in an output').toBeUndefined();
      for (const token of actorTokens) expect(text.includes(token.split('.')[2]!), 'an actor token in an output').toBe(false);
    }
    await proxy?.stop();
    await upstream?.close();
    endpoint?.close();
  });

  /** The token the upstream was given for one request through the proxy as `proxyUrl`'s agent. */
  async function tokenSeenAs(proxyUrl: string): Promise<{ status: number; token: string }> {
    const url = new URL(proxyUrl);
    const client = new ProxyAgent({
      uri: `http://${url.host}`,
      token: `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
    try {
      const res = await request(`https://${API}:${upstream.port}/echo`, { dispatcher: client });
      const text = await res.body.text();
      outputs.push(text);
      if (res.statusCode !== 200) return { status: res.statusCode, token: '' };
      return { status: 200, token: String(upstream.seen.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '') };
    } catch {
      // A key the proxy does not know yet: the tunnel refused.
      return { status: 407, token: '' };
    } finally {
      await client.close();
    }
  }
  const leadUrl = () => `http://lead:lead-key-act-0123456789@127.0.0.1:${proxy.port}`;

  it("a root agent's exchange is as before: no actor token, no act", async () => {
    const seen = await tokenSeenAs(leadUrl());
    expect(seen.status).toBe(200);
    expect(issued.get(seen.token)).toEqual({ sub: 'service' });
    expect(forms.at(-1)?.has('actor_token')).toBe(false);
    expect(forms.at(-1)?.has('actor_token_type')).toBe(false);
  });

  it("a child's exchange carries its chain nested in act; each agent keeps its own token", async () => {
    const minted = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'worker', '--grants', 'api', '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const child = JSON.parse(minted.stdout) as { proxy_url: string };
    const first = await waitForAsync(async () => {
      const r = await tokenSeenAs(child.proxy_url);
      return r.status === 200 ? r : undefined;
    }, 'the child to be served');
    expect(issued.get(first.token)).toEqual({ sub: 'service', act: { sub: 'worker', act: { sub: 'lead' } } });
    const form = forms.at(-1)!;
    expect(form.get('actor_token_type')).toBe(TOKEN_TYPES.jwt);
    expect(form.get('subject_token')).toBe(SUBJECT);

    // Cached per chain: the child is never handed the parent's token, nor the parent the child's.
    const exchanges = forms.length;
    const leadAgain = await tokenSeenAs(leadUrl());
    const childAgain = await tokenSeenAs(child.proxy_url);
    expect(issued.get(leadAgain.token)).toEqual({ sub: 'service' });
    expect(childAgain.token).toBe(first.token);
    expect(leadAgain.token).not.toBe(first.token);
    expect(forms.length, 'both held tokens reused').toBe(exchanges);

    // The audit line names the chain and the grant's source, never the actor token.
    const line = await waitForAsync(
      async () => proxy.auditLines().find((l) => l['agent'] === 'worker' && l['decision'] === 'inject'),
      "the child's audit line",
    );
    expect(line).toMatchObject({ grant: 'api', chain: ['lead', 'worker'], secret_source: 'token_exchange' });
  });

  it('the endpoint refuses an actor token keyway did not sign, or of another type: the check can fail', async () => {
    const base = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: SUBJECT, subject_token_type: TOKEN_TYPES.access_token };
    const forged = await new SignJWT({ act: { sub: 'lead' } })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(CLIENT)
      .setSubject('worker')
      .setAudience(endpointUrl)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode('not-the-client-secret'));
    const wrongKey = await post(new URLSearchParams({ ...base, actor_token: forged, actor_token_type: TOKEN_TYPES.jwt }));
    expect(wrongKey).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const genuine = actorTokens.at(-1)!;
    const wrongType = await post(new URLSearchParams({ ...base, actor_token: genuine, actor_token_type: TOKEN_TYPES.access_token }));
    expect(wrongType).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});
