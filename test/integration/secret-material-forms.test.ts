// Every documented form of every grant type's secret (issue 36, item 12), set each way it can be set:
// `keyway secrets set ID --stdin` and `grants add … --secret-stdin`, PUT /api/grants/ID/secret with
// the text (what the dashboard sends) and, for JSON, with the object, and POST /api/grants with it. The one parser behind them all
// (operations/secret-input.ts) must read each form to the same stored material. A PEM pasted raw
// into a JSON string, or with its line breaks gone (a one-line field turns them into spaces), is read too.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { issueClientCert, makeTestCa } from '../helpers/client-ca.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { FORMS, type MaterialForm, pemsOf, rawPems, type TestKeys } from '../helpers/material-forms.ts';

// Two CLI processes per documented form, one after another: ~60 s on a quiet machine, past 120 s
// once when the shared machine was slow. The limit catches a hang; it times nothing.
const SLOW = 300_000;

describe('secret material: every documented form, through the CLI and the admin API', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let keys: TestKeys;
  let forms: MaterialForm[];
  let n = 0;

  beforeAll(async () => {
    const client = issueClientCert(makeTestCa('material-forms-ca'), 'material-forms-client');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    keys = {
      certificate: client.certPem.replace(/\r\n/g, '\n'),
      privateKey: client.keyPem,
      rsaPkcs1: rsa.export({ type: 'pkcs1', format: 'pem' }).toString(),
      rsaPkcs8: rsa.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    forms = FORMS(keys);
    proxy = await startProxy();
    admin = adminClient(proxy);
  }, SLOW);
  afterAll(async () => {
    await proxy?.stop();
  });

  /** A new store grant of the form's type, with no secret yet. */
  async function newGrant(form: Pick<MaterialForm, 'type' | 'grant'>): Promise<string> {
    const id = `${form.type.replace(/_/g, '-')}-${++n}`;
    const res = await admin.call('POST', '/api/grants', { id, type: form.type, domains: [`${id}.example.test`], ...form.grant });
    expect(res.status, res.text).toBe(201);
    return id;
  }

  /** Why the stored material is not the form's, or undefined when it is (PEMs compared by what they encode). */
  async function storedProblem(id: string, form: MaterialForm): Promise<string | undefined> {
    const store = proxy.running.services.store;
    // A CLI writes from another process: the proxy sees it when it next reads the store.
    await expect.poll(() => store.get<StoredGrant>(grantRecordId(id))?.secret, { timeout: 10_000 }).toBeDefined();
    const secret = store.get<StoredGrant>(grantRecordId(id))!.secret;
    const listed = await admin.call('GET', `/api/grants/${id}`);
    if ((listed.body as { grant: { secret: string } }).grant.secret !== 'set') return 'not listed as set';
    if (JSON.stringify(pemsOf(secret)) !== JSON.stringify(pemsOf(form.want))) return 'stored material differs';
    for (const pem of rawPems(secret)) {
      try {
        if (pem.includes('CERTIFICATE')) new X509Certificate(pem);
        else createPrivateKey(pem);
      } catch {
        return 'a stored PEM does not read';
      }
    }
    return undefined;
  }

  /** The form's grant fields as `keyway grants add` flags. */
  function grantFlags(form: MaterialForm): string[] {
    const g = (form.grant ?? {}) as { inject?: { header?: string }; sign?: { preset?: string }; scopes?: string[] };
    return [
      ...(g.inject?.header ? ['--header', g.inject.header] : []),
      ...(g.sign?.preset ? ['--sign-preset', g.sign.preset] : []),
      ...(g.scopes ? ['--scopes', g.scopes.join(',')] : []),
    ];
  }

  /** Sets each form one way; the forms that failed, one line each (so one run shows them all). */
  async function failures(way: (form: MaterialForm) => AsyncGenerator<[string, () => Promise<{ ok: boolean; said: string; id: string }>]>) {
    const out: string[] = [];
    for (const form of forms) {
      for await (const [path, set] of way(form)) {
        const { ok, said, id } = await set();
        const problem = ok ? await storedProblem(id, form) : said.trim().split('\n')[0];
        if (problem) out.push(`${form.type} | ${form.name} | ${path}: ${problem}`);
      }
    }
    return out;
  }

  it(
    'keyway secrets set ID --stdin, and keyway grants add ID … --secret-stdin',
    async () => {
      const failed = await failures(async function* (form) {
        yield [
          'secrets set --stdin',
          async () => {
            const id = await newGrant(form);
            const res = await proxy.cli(['secrets', 'set', id, '--stdin'], form.text);
            return { ok: res.code === 0, said: res.stderr, id };
          },
        ];
        yield [
          'grants add --secret-stdin',
          async () => {
            const id = `added-${form.type.replace(/_/g, '-')}-${++n}`;
            const args = ['grants', 'add', id, '--type', form.type, '--domains', `${id}.example.test`, ...grantFlags(form), '--secret-stdin'];
            const res = await proxy.cli(args, form.text);
            return { ok: res.code === 0, said: res.stderr, id };
          },
        ];
      });
      expect(failed).toEqual([]);
    },
    SLOW,
  );

  it(
    'PUT /api/grants/ID/secret with the text, as the dashboard sends it, with the JSON object, and POST /api/grants with it',
    async () => {
      const failed = await failures(async function* (form) {
        const put = (secret: unknown) => async () => {
          const id = await newGrant(form);
          const res = await admin.call('PUT', `/api/grants/${id}/secret`, { secret });
          return { ok: res.status === 200, said: res.text, id };
        };
        yield ['PUT text', put(form.text)];
        if (form.object) yield ['PUT object', put(form.object)];
        yield [
          'POST with secret',
          async () => {
            const id = `new-${form.type.replace(/_/g, '-')}-${++n}`;
            const res = await admin.call('POST', '/api/grants', { id, type: form.type, domains: [`${id}.example.test`], ...form.grant, secret: form.text });
            return { ok: res.status === 201, said: res.text, id };
          },
        ];
      });
      expect(failed).toEqual([]);
    },
    SLOW,
  );

  it(
    'wrong material is refused in one line that names the form and never quotes the secret',
    async () => {
      const cases: Array<[string, string, RegExp]> = [
        ['mtls', `{"certificate":"${keys.certificate.trim()}"`, /^an mtls secret is a JSON object \{"certificate","privateKey","passphrase"\?\}/],
        ['mtls', JSON.stringify('-----BEGIN CERTIFICATE-----kw-refused'), /^an mtls secret is a JSON object/],
        ['github_app', `{"appId":1,"privateKey":"${keys.rsaPkcs1.trim()}`, /^a github_app secret is a JSON object \{"appId","privateKey","installationId"\?\}/],
        ['aws_sigv4', 'AKIAkwrefused:secret', /^an aws_sigv4 secret is a JSON object/],
        ['basic', 'kw-refused-no-colon', /^a basic secret is username:password/],
      ];
      for (const [type, text, message] of cases) {
        const id = await newGrant({ type });
        const viaCli = await proxy.cli(['secrets', 'set', id, '--stdin'], text);
        expect(viaCli.code, viaCli.stderr).toBe(2);
        const line = viaCli.stderr
          .trim()
          .split('\n')[0]!
          .replace(/^keyway secrets: /, '');
        expect(line).toMatch(message);
        const viaApi = await admin.call('PUT', `/api/grants/${id}/secret`, { secret: text });
        expect(viaApi.status).toBe(400);
        expect((viaApi.body as { error: { message: string } }).error.message).toMatch(message);
        for (const said of [viaCli.stderr, viaApi.text]) {
          expect(said).not.toContain('kw-refused');
          expect(said).not.toContain('BEGIN');
          expect(said).not.toContain('AKIA');
        }
      }
    },
    SLOW,
  );
});
