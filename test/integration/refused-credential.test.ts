// A stored secret the upstream refuses (issue 86): the grant looked "active" while every request got
// the vendor's 401. Now the upstream's 401 to the grant's credential shows in `keyway grants list`
// and in `keyway doctor`, and goes once the upstream accepts the credential again. A real keyway, a
// real upstream that checks the token (and is shown to accept the right one), real CLI runs.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const RIGHT = `${CANARY}-right-token`;
const WRONG = `${CANARY}-wrong-token`;

describe('a credential the upstream refuses', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let agent: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${RIGHT}` });
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: WRONG }] });
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  const call = async () => {
    const res = await request(`https://api.example.test:${upstream.port}/v1/thing`, { dispatcher: agent });
    await res.body.text();
    return res.statusCode;
  };
  const refusedLine = async () => {
    const listed = await proxy.cli(['grants', 'list']);
    return listed.stdout.split('\n').find((line) => line.startsWith('grant api: its credential was refused upstream'));
  };

  it('grants list and doctor say so after a 401, and stop saying it once the right secret is accepted', async () => {
    expect(await call()).toBe(401);
    // Kept in memory and written within 10 s (the usage records' flush).
    const line = await waitForAsync(refusedLine, 'the refused line in grants list', 30_000);
    expect(line).toMatch(/\(401 at \d{4}-\d{2}-\d{2}T[\d:.]+Z\): check it, and set it again \(keyway secrets set api --stdin\)/);
    const doctor = await proxy.cli(['doctor', '--json']);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks;
    expect(checks.find((c) => c.check === 'credentials refused upstream')).toMatchObject({ status: 'warn', detail: expect.stringContaining('api (401 at') });

    expect((await proxy.cli(['secrets', 'set', 'api', '--stdin'], `${RIGHT}\n`)).code).toBe(0);
    await waitForAsync(async () => ((await call()) === 200 ? true : undefined), 'the right secret accepted', 15_000);
    await waitForAsync(async () => ((await refusedLine()) === undefined ? true : undefined), 'the refused line gone', 30_000);
    const after = await proxy.cli(['doctor', '--json']);
    expect((JSON.parse(after.stdout) as { checks: Array<{ check: string }> }).checks.some((c) => c.check === 'credentials refused upstream')).toBe(false);
    for (const text of [doctor.stdout, doctor.stderr, after.stdout, line, ...proxy.logs]) expect(text).not.toContain(CANARY);
  });
});
