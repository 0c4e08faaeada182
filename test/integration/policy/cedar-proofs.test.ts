// Cedar candidates judged against real recorded traffic: requests sent through a real keyway by
// curl to a loopback upstream, then `keyway policy test --policy` and `policy diff` with Cedar files
// name exactly the requests whose verdict flips and the policy ids that decided; a candidate reading
// body_size or query_keys leaves the lines it could apply to "not replayable"; `policy lint` finds a
// misspelled context attribute with its file, line and column; POST /api/policy/test answers the
// same as the command. No output carries the grant's secret.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { adminClient } from '../../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt } from '../../helpers/browser.ts';
import { curl } from '../../helpers/clients.ts';
import { homeWithPolicy } from '../../helpers/cedar-home.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { makeHome, runCli, startProxy, type TestProxy } from '../../helpers/keyway.ts';
import { sendAs, startOkUpstream } from '../../helpers/proof-traffic.ts';
import type { TestUpstream } from '../../helpers/upstream.ts';

const SECRET = `${CANARY}-cedar`;

type Differing = { seq: number; agent: string; method: string; path: string; verdict: string; stage: string | null; deciding: string[] };
type Report = { compared: number; differing: Differing[]; not_replayable: Array<{ seq: number; why: string }> };

/** A folder of Cedar files, writable by this user alone (keyway refuses others). */
function cedarDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-cedar-candidate-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return dir;
}

const NO_DELETES = `@id("no-deletes")
forbid (principal, action, resource == Grant::"api")
when { context.method == "DELETE" };
`;
const OPS_NO_ADMIN = `@id("ops-no-admin")
forbid (principal == Agent::"ops", action, resource)
when { context.path like "/v1/admin/*" };
`;

describe('policy test and diff with Cedar candidates, over real traffic', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startOkUpstream();
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key', OPS_KEY: 'ops-key' },
      config: {
        agents: {
          bot: { key: 'env:BOT_KEY', rules: [{ grant: 'api', methods: ['GET', 'DELETE'], paths: ['/v1/**'] }] },
          ops: { key: 'env:OPS_KEY' },
        },
      },
    });
    for (const [agent, method, path] of [
      ['bot', 'GET', '/v1/items'],
      ['bot', 'DELETE', '/v1/items/7'],
      ['bot', 'POST', '/v1/items'],
      ['ops', 'GET', '/v1/admin/keys'],
      ['ops', 'DELETE', '/v1/admin/keys'],
      ['ops', 'GET', '/v1/items?page=2'],
    ] as const) {
      await sendAs(proxy, outputs, agent, method, `https://api.example.test:${upstream.port}${path}`);
    }
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function cli(args: string[]) {
    const r = await proxy.cli(args);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  const seqOf = (agent: string, method: string, path: string) =>
    proxy.auditLines().find((l) => l['agent'] === agent && l['method'] === method && l['path'] === path && l['phase'] === undefined)?.['seq'] as number;

  it('--since leaves out what came before it', async () => {
    const later = JSON.parse((await cli(['policy', 'test', '--since', '2999-01-01', '--json'])).stdout) as Report;
    expect(later.compared).toBe(0);
    const recent = JSON.parse((await cli(['policy', 'test', '--since', '1h', '--json'])).stdout) as Report;
    expect(recent.compared).toBe(6);
  });

  it('test --policy names exactly the recorded requests a candidate would refuse, with the forbids that decide', async () => {
    const candidate = cedarDir({ 'a.cedar': NO_DELETES, 'b.cedar': OPS_NO_ADMIN });
    const r = await cli(['policy', 'test', '--policy', candidate, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.compared).toBe(6);
    const flips = report.differing.map((d) => [d.seq, d.verdict, d.stage, [...d.deciding].sort()]);
    expect(flips).toEqual([
      [seqOf('bot', 'DELETE', '/v1/items/7'), 'deny', 'cedar', ['no-deletes']],
      [seqOf('ops', 'GET', '/v1/admin/keys'), 'deny', 'cedar', ['ops-no-admin']],
      [seqOf('ops', 'DELETE', '/v1/admin/keys'), 'deny', 'cedar', ['no-deletes', 'ops-no-admin']],
    ]);
    // --agent keeps one agent's lines; the text form names the same requests.
    const bot = JSON.parse((await cli(['policy', 'test', '--policy', candidate, '--agent', 'bot', '--json'])).stdout) as Report;
    expect(bot.differing.map((d) => d.seq)).toEqual([seqOf('bot', 'DELETE', '/v1/items/7')]);
    const text = await cli(['policy', 'test', '--policy', join(candidate, 'a.cedar')]);
    expect(text.stdout).toContain(`seq ${seqOf('bot', 'DELETE', '/v1/items/7')} `);
    expect(text.stdout).toContain('now deny at cedar by no-deletes');
  });

  it('a Cedar permit admits what the YAML allow rules did not, on a grant the agent holds', async () => {
    const candidate = cedarDir({
      'p.cedar': `@id("bot-may-post")\npermit (principal == Agent::"bot", action, resource == Grant::"api") when { context.method == "POST" };\n`,
    });
    const report = JSON.parse((await cli(['policy', 'test', '--policy', candidate, '--json'])).stdout) as Report;
    expect(report.differing.map((d) => [d.seq, d.verdict, d.deciding])).toEqual([[seqOf('bot', 'POST', '/v1/items'), 'allow', ['bot-may-post']]]);
  });

  it('a candidate reading body_size or query_keys leaves the lines it could apply to not replayable, never guessed', async () => {
    const candidate = cedarDir({
      'body.cedar': `@id("small-bodies")\nforbid (principal == Agent::"ops", action, resource) when { context has body_size && context.body_size > 1000 };\n`,
      'query.cedar': `@id("no-paging")\nforbid (principal == Agent::"bot", action, resource) when { context.query_keys.contains("page") };\n`,
    });
    const report = JSON.parse((await cli(['policy', 'test', '--policy', candidate, '--json'])).stdout) as Report;
    expect(report.differing).toEqual([]);
    expect(report.compared).toBe(0);
    expect(report.not_replayable).toHaveLength(6);
    const why = report.not_replayable.find((n) => n.seq === seqOf('ops', 'GET', '/v1/items'))!.why;
    expect(why).toContain('small-bodies');
    expect(why).toContain('body_size');
  });

  it('diff between two Cedar folders: the flipped requests, and the authority a removed forbid adds', async () => {
    const old = cedarDir({ 'a.cedar': NO_DELETES, 'b.cedar': OPS_NO_ADMIN });
    const wider = cedarDir({ 'b.cedar': OPS_NO_ADMIN });
    const r = await cli(['policy', 'diff', old, wider, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report & { authority: { summary: string; items: Array<{ kind: string; what: string }> } };
    // ops's DELETE on the admin path stays refused (ops-no-admin): only bot's DELETE flips.
    expect(report.differing.map((d) => [d.seq, d.verdict])).toEqual([[seqOf('bot', 'DELETE', '/v1/items/7'), 'allow']]);
    expect(report.authority.summary).toBe('authority added');
    expect(report.authority.items).toEqual([{ kind: 'added', what: 'forbid no-deletes removed: any agent × Grant::"api" × any action' }]);

    const back = JSON.parse((await cli(['policy', 'diff', wider, old, '--json'])).stdout) as Report & { authority: { summary: string } };
    expect(back.differing.map((d) => [d.seq, d.verdict])).toEqual([[seqOf('bot', 'DELETE', '/v1/items/7'), 'deny']]);
    expect(back.authority.summary).toBe('no authority added');
    expect((await cli(['policy', 'diff', wider, old])).stdout).toContain('\nno authority added');
  });

  it('POST /api/policy/test answers what policy test --json prints, and GET /api/policy gives the hash', async () => {
    const admin = adminClient(proxy);
    const { status, body } = await admin.call('POST', '/api/policy/test', { policy: NO_DELETES });
    expect(status).toBe(200);
    const report = body as Report & { files: string[] };
    expect(report.files).toEqual(['candidate.cedar']);
    expect(report.differing.map((d) => d.seq)).toEqual([seqOf('bot', 'DELETE', '/v1/items/7'), seqOf('ops', 'DELETE', '/v1/admin/keys')]);
    const broken = await admin.call('POST', '/api/policy/test', { policy: 'permit (principal, action, resource) when { nope };' });
    expect(broken.status).toBe(400);
    expect(JSON.stringify(broken.body)).toContain('candidate.cedar:1:');
    const current = await admin.call('GET', '/api/policy');
    expect(current.status).toBe(200);
    const shown = JSON.parse((await cli(['policy', 'show', '--json'])).stdout) as { hash: string };
    expect((current.body as { hash: string }).hash).toBe(shown.hash);
    outputs.push(JSON.stringify(body), JSON.stringify(broken.body), JSON.stringify(current.body));
  });

  it("the dashboard's Policy page shows the hash, the lint, and replays the last 24 h on a click", async () => {
    const browser = await launchChromium();
    try {
      const { page, errors } = await openPage(browser);
      await signInAt(page, adminClient(proxy), 'policy', 'Policy');
      const shown = JSON.parse((await cli(['policy', 'show', '--json'])).stdout) as { hash: string };
      expect(await page.locator('#policy-hash-value').textContent()).toBe(shown.hash);
      await page.locator('#policy-lint-clean').waitFor();
      await page.getByRole('button', { name: 'Test against the last 24 h' }).click();
      await page.locator('#policy-test-summary').waitFor();
      expect(await page.locator('#policy-test-summary').textContent()).toBe('6 recorded requests judged again; verdicts that differ: 0.');
      outputs.push(await page.content());
      // Each audit row shows the hash of the policy that judged it (its first 12 hex digits; the whole in its title).
      await page.goto(`${adminClient(proxy).base}/#/audit`);
      const hash = page.locator('table.audit tbody tr .policy-hash').first();
      await hash.waitFor();
      expect(await hash.getAttribute('title')).toBe(shown.hash);
      expect(await hash.textContent()).toBe(` policy ${shown.hash.slice(7, 19)}`);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('never prints a secret or a query string', () => {
    const all = outputs.join('\n');
    expect(all).not.toContain(CANARY);
    expect(all).not.toContain('page=2');
  });
});

describe('keyway policy lint', () => {
  it('finds a misspelled context attribute with its file, line and column, and exits 1', async () => {
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_SECRET' } },
        agents: { bot: { grants: ['api'], key: 'env:BOT_KEY' } },
      }),
    );
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(
      join(home, 'policies', 'typo.cedar'),
      `// reads a field the schema does not have\n@id("no-posts")\nforbid (principal, action, resource)\n  when { context.mthod == "POST" };\n\n@id("for-nobody")\npermit (principal == Agent::"nobody", action, resource);\n\n@id("blanket")\nforbid (principal, action, resource == Grant::"api");\n\n@id("api-reads")\npermit (principal == Agent::"bot", action, resource == Grant::"api");\n`,
      { mode: 0o600 },
    );
    const env = { KEYWAY_HOME: home, API_SECRET: SECRET, BOT_KEY: 'bot-key' };
    const r = await runCli(['policy', 'lint'], env);
    expect(r.code, r.stderr).toBe(1);
    const file = join(home, 'policies', 'typo.cedar');
    expect(r.stdout).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:10: error: .*mthod.*did you mean \`method\``, 'm'));
    expect(r.stdout).toContain('for-nobody: can never apply: no agent of the config is Agent::"nobody"');
    expect(r.stdout).toContain('api-reads: shadowed: blanket');
    const json = JSON.parse((await runCli(['policy', 'lint', '--json'], env)).stdout) as {
      findings: Array<{ severity: string; at: string }>;
    };
    expect(json.findings.filter((f) => f.severity === 'error').map((f) => f.at)).toEqual([`${file}:4:10`]);
    // keyway doctor runs lint: its check fails, naming the place.
    const doctor = await runCli(['doctor', '--json', '--timeout', '5s'], env);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; detail: string }> }).checks;
    const lint = checks.find((c) => c.check === 'policy lint');
    expect(lint?.status).toBe('fail');
    expect(lint?.detail).toContain(`${file}:4:10: attribute \`mthod\``);
  });
});

describe('keyway policy lint on files that do not load', () => {
  it('names the parse error with its place, and still validates the other files', async () => {
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ agents: { bot: { key: 'env:BOT_KEY' } } }));
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(join(home, 'policies', 'a-broken.cedar'), '@id("x")\npermit (principal, action, resource) when { nope };\n', { mode: 0o600 });
    writeFileSync(join(home, 'policies', 'b-typo.cedar'), 'forbid (principal, action, resource)\n  when { context.mthod == "POST" };\n', { mode: 0o600 });
    const r = await runCli(['policy', 'lint'], { KEYWAY_HOME: home, BOT_KEY: 'bot-key' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${join(home, 'policies', 'a-broken.cedar')}:2:`);
    expect(r.stdout).toContain(`${join(home, 'policies', 'b-typo.cedar')}:2:10: error: attribute \`mthod\``);
    expect(r.stdout).toContain('the policy does not load: 2 error(s)');
  });
});

describe('policy check against a keyway whose home has Cedar files', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startOkUpstream();
    const { home } = homeWithPolicy(
      `${NO_DELETES}\n${OPS_NO_ADMIN}\n@id("small-bodies")\nforbid (principal, action, resource) when { context has body_size && context.body_size > 1000 };\n`,
      'rules.cedar',
    );
    proxy = await startProxy({
      home,
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { OPS_KEY: 'ops-key' },
      config: { agents: { ops: { key: 'env:OPS_KEY' } } },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('says what the proxy then does, Cedar forbids on a path and on a body size included; test sets apart every line a body rule could apply to', async () => {
    const cases: Array<[string, string, string, string | null, string[]]> = [
      ['GET', '/v1/items', 'allow', null, ['yaml:agents.ops']],
      ['DELETE', '/v1/items/1', 'deny', 'cedar', ['no-deletes']],
      ['GET', '/v1/admin/keys', 'deny', 'cedar', ['ops-no-admin']],
    ];
    for (const [method, path, verdict, stage, deciding] of cases) {
      const target = `https://api.example.test:${upstream.port}${path}`;
      const asked = await proxy.cli(['policy', 'check', '--agent', 'ops', '--json', method, target]);
      const said = JSON.parse(asked.stdout) as { verdict: string; stage: string | null; code: string | null; deciding: string[] };
      expect([said.verdict, said.stage, said.deciding]).toEqual([verdict, stage, deciding]);
      const heard: string[] = [];
      const sent = await sendAs(proxy, heard, 'ops', method, target);
      expect(sent.status, `${method} ${path}`).toBe(verdict === 'allow' ? 200 : 403);
      if (said.code !== null) expect(sent.code).toBe(said.code);
      expect(heard.join('\n')).not.toContain(CANARY);
    }
    // A body the policy reads: none by default (0 bytes, as the proxy counts a GET), or --body-size.
    const big = JSON.parse(
      (await proxy.cli(['policy', 'check', '--agent', 'ops', '--json', '--body-size', '5000', 'POST', `https://api.example.test:${upstream.port}/v1/items`]))
        .stdout,
    ) as { verdict: string; deciding: string[] };
    expect([big.verdict, big.deciding]).toEqual(['deny', ['small-bodies']]);
    const none = JSON.parse(
      (await proxy.cli(['policy', 'check', '--agent', 'ops', '--json', 'POST', `https://api.example.test:${upstream.port}/v1/items`])).stdout,
    ) as {
      verdict: string;
    };
    expect(none.verdict).toBe('allow');
    const sent = await curl(
      [
        '-X',
        'POST',
        '--data-binary',
        'x'.repeat(5000),
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--proxy',
        `http://ops:ops-key@127.0.0.1:${proxy.port}`,
        '--cacert',
        proxy.caPath,
        `https://api.example.test:${upstream.port}/v1/items`,
      ],
      {},
    );
    expect(sent.stdout).toBe('403');
    const shown = JSON.parse((await proxy.cli(['policy', 'show', '--json'])).stdout) as { hash: string; files: string[] };
    expect(shown.files).toEqual([join(proxy.home, 'policies', 'rules.cedar')]);
    // --cedar: what the YAML compiles to, then each file's policies; schema: what they are checked against.
    const cedar = (await proxy.cli(['policy', 'show', '--cedar'])).stdout;
    expect(cedar).toContain('@id("yaml:agents.ops")');
    expect(cedar.indexOf('@id("no-deletes")')).toBeGreaterThan(cedar.indexOf('@id("yaml:agents.ops")'));
    const schema = (await proxy.cli(['policy', 'schema'])).stdout;
    expect(schema).toContain('action request, mcp_call appliesTo');
    const requests = proxy.auditLines().filter((l) => l['method'] !== null && l['agent'] === 'ops');
    expect(requests.map((l) => l['policy'])).toEqual(requests.map(() => shown.hash));
    const report = JSON.parse((await proxy.cli(['policy', 'test', '--json'])).stdout) as Report;
    // small-bodies reads body_size, which the log does not keep: every line is set apart, none guessed.
    expect(report.compared).toBe(0);
    expect(report.not_replayable).toHaveLength(4);
    expect(report.differing).toEqual([]);
  });
});
