// keyway doctor's checks of identity issuers, the egress proxy and the audit checkpoint key, with
// the real CLI: an issuer whose keys are in a file and one that does not answer, squid as the egress
// proxy (and one that is down), and a checkpoint file signed by this home's key and by another.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointKeyFrom } from '../../src/audit/checkpoints/index.ts';
import { signCheckpoint } from '../../src/audit/checkpoints/record.ts';
import { freePort } from '../helpers/clients.ts';
import { startCorporateProxy, type CorporateProxy } from '../helpers/corporate-proxy.ts';
import { fileIssuer } from '../helpers/identity-issuer.ts';
import { makeHome, runCli, startProxy, TEST_HOSTS } from '../helpers/keyway.ts';
import { startUpstream } from '../helpers/upstream.ts';

interface Check {
  check: string;
  status: string;
  detail: string;
}

async function doctor(home: string, env: Record<string, string>, extra: string[] = []): Promise<Check[]> {
  const r = await runCli(['doctor', '--json', '--timeout', '5s', ...extra], { KEYWAY_HOME: home, ...env });
  return (JSON.parse(r.stdout) as { checks: Check[] }).checks;
}

describe('keyway doctor: issuers, egress proxy, checkpoint key', () => {
  let corp: CorporateProxy;
  const master = randomBytes(32);
  const env = { KEYWAY_MASTER_KEY: master.toString('base64') };

  beforeAll(async () => {
    corp = await startCorporateProxy({ hosts: TEST_HOSTS });
  });
  afterAll(async () => {
    await corp?.stop();
  });

  function homeWith(config: Record<string, unknown>): string {
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
    return home;
  }

  it('an issuer whose keys load is ok; one that does not answer fails with why', async () => {
    const home = makeHome();
    const k8s = await fileIssuer('https://kubernetes.default.svc.cluster.local', join(home, 'jwks.json'));
    const dead = await freePort();
    const configHome = homeWith({
      agents: { pod: {} },
      proxy: { allow_networks: ['127.0.0.0/8'] },
      identities: [
        { issuer: k8s.issuer, jwks: k8s.jwksPath, audience: 'keyway', map: [{ claims: { sub: '*' }, agent: 'pod' }] },
        { issuer: `http://127.0.0.1:${dead}`, audience: 'keyway', map: [{ claims: { sub: '*' }, agent: 'pod' }] },
      ],
    });
    const checks = await doctor(configHome, env);
    expect(checks.find((c) => c.check === `identity issuer ${k8s.issuer}`)).toMatchObject({ status: 'ok', detail: '1 public signing key(s)' });
    expect(checks.find((c) => c.check === `identity issuer http://127.0.0.1:${dead}`)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/could not be reached \(ECONNREFUSED\)/),
    });
  });

  it('an egress proxy that takes the CONNECT is ok; one that is down fails', async () => {
    const grants = { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:X' } };
    const proxy = { hosts: { 'api.example.test': '127.0.0.1' }, allow_networks: ['127.0.0.0/8'] };
    // Without --url: a grant's host on 443, where nothing listens here: squid says so, and doctor passes it on.
    const nothing = await doctor(homeWith({ grants, proxy, egress: { proxy: corp.url } }), env);
    expect(nothing.find((c) => c.check === `egress proxy ${corp.url}`)).toMatchObject({
      status: 'fail',
      detail: `the egress proxy ${corp.url} answered 503 to CONNECT 127.0.0.1:443`,
    });
    const upstream = await startUpstream();
    try {
      const up = await doctor(homeWith({ grants, proxy, egress: { proxy: corp.url } }), env, ['--url', `https://api.example.test:${upstream.port}/echo`]);
      expect(up.find((c) => c.check === `egress proxy ${corp.url}`)).toMatchObject({
        status: 'ok',
        detail: `CONNECT api.example.test:${upstream.port} answered 200`,
      });
    } finally {
      await upstream.close();
    }
    const deadPort = await freePort();
    const down = await doctor(homeWith({ grants, proxy, egress: { proxy: `http://127.0.0.1:${deadPort}` } }), env);
    expect(down.find((c) => c.check === `egress proxy http://127.0.0.1:${deadPort}`)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/could not be reached/),
    });
  });

  it('takes an env: secret this shell lacks from the running keyway (issue 48): egress.proxy: env:CORP_PROXY', async () => {
    const config = {
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:X' } },
      proxy: { hosts: { 'api.example.test': '127.0.0.1' }, allow_networks: ['127.0.0.0/8'] },
      egress: { proxy: 'env:CORP_PROXY' },
    };
    // Nothing running: the shell must hold it, and doctor says it does not.
    const alone = await doctor(homeWith(config), env);
    expect(alone.find((c) => c.check === 'egress proxy')).toMatchObject({ status: 'fail', detail: expect.stringContaining('CORP_PROXY is not set') });
    // A keyway started with it: doctor, from a shell without it, checks the proxy it names.
    const running = await startProxy({ config, env: { CORP_PROXY: corp.url, X: 'x-secret' } });
    try {
      const checks = await doctor(running.home, { KEYWAY_MASTER_KEY: running.env['KEYWAY_MASTER_KEY']! });
      expect(checks.find((c) => c.check === 'egress proxy')).toBeUndefined();
      expect(checks.find((c) => c.check === `egress proxy ${corp.url}`)).toBeDefined();
    } finally {
      await running.stop();
    }
  });

  it("the newest checkpoint signed by this home's key is ok; by another key, it fails", async () => {
    const home = homeWith({});
    mkdirSync(join(home, 'logs'), { recursive: true });
    const file = join(home, 'logs', 'audit.checkpoints.jsonl');
    const none = await doctor(home, env);
    expect(none.find((c) => c.check === 'audit checkpoint key')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/no checkpoint signed yet/) });
    writeFileSync(file, `${JSON.stringify(signCheckpoint({ seq: 7, hash: 'b'.repeat(64) }, checkpointKeyFrom(master), new Date().toISOString()))}\n`);
    const good = await doctor(home, env);
    expect(good.find((c) => c.check === 'audit checkpoint key')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/newest checkpoint \(seq 7, .*\) verifies/),
    });
    writeFileSync(file, `${JSON.stringify(signCheckpoint({ seq: 8, hash: 'c'.repeat(64) }, checkpointKeyFrom(randomBytes(32)), new Date().toISOString()))}\n`, {
      flag: 'a',
    });
    const bad = await doctor(home, env);
    expect(bad.find((c) => c.check === 'audit checkpoint key')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/not signed by this home's key/),
    });
    const noKey = await doctor(home, {});
    expect(noKey.find((c) => c.check === 'audit checkpoint key')).toMatchObject({ status: 'skip' });
  });
});
