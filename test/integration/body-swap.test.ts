import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryLeaks, curl, findPythonWithRequests } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// inject: {body: true} end to end: real clients (curl --data-urlencode, Python requests data=,
// Node's fetch with a JSON body, chunked and split) send keyway-placeholder-<grant id> where the
// secret goes; the upstream checks the secret and refuses anything else; an upstream that echoes
// the body back has the secret redacted by the leak guard; nothing is swapped for another grant,
// on a tunnelled host, past the bound, or in a body that is not what it says it is.

// Characters that need escaping in forms (and '/', which JSON encoders may escape), around the
// canary the leak checks look for. JSON's own (" and \) are in the unit tests (body-swap.test.ts):
// an upstream that echoes a JSON body inside JSON escapes those twice, a form the leak guard does not match.
const SECRET = `${CANARY}+a&b=c%d e/f`;
const OTHER_SECRET = 'kw-other-secret-91b2c3';
const KEY = 'bot-key-4d2f9a';
const SLACK = 'keyway-placeholder-slack';
const ADMIN = 'keyway-placeholder-slack-admin';
const REDACTED = '[redacted by keyway]';

let proxy: TestProxy;
let upstream: TestUpstream;
/** The body each request reached the upstream with, by the X-Tag the test put on it. */
const bodies = new Map<string, string>();

/** Slack-style: the token is a form field (or a JSON field); 401 unless it is the secret. The answer echoes the body. */
function handler(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): boolean {
  const tag = String(req.headers['x-tag'] ?? '');
  const text = body?.toString('utf8') ?? '';
  bodies.set(tag, text);
  let token: unknown;
  const type = String(req.headers['content-type'] ?? '');
  if (type.startsWith('application/x-www-form-urlencoded')) token = new URLSearchParams(text).get('token');
  else if (type.startsWith('application/json')) {
    try {
      token = (JSON.parse(text) as { params?: { token?: unknown } }).params?.token;
    } catch {
      token = undefined;
    }
  } else token = text.match(/token: (.*)$/m)?.[1];
  const ok = token === SECRET;
  res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify({ ok, error: ok ? undefined : 'invalid_auth', echo: text }));
  return true;
}

const proxyUrl = () => `http://bot:${KEY}@127.0.0.1:${proxy.port}`;
const agentEnv = () => cleanEnv({ HTTPS_PROXY: proxyUrl(), CURL_CA_BUNDLE: proxy.bundlePath, REQUESTS_CA_BUNDLE: proxy.bundlePath });
const api = () => `https://api.example.test:${upstream.port}`;

/** The request's audit line (written just after the answer): the tag is its path. */
async function auditFor(tag: string): Promise<Record<string, unknown>> {
  return waitFor(() => proxy.auditLines().find((l) => l['path'] === `/${tag}`), `the audit line for /${tag}`);
}

beforeAll(async () => {
  upstream = await startUpstream({ handler });
  proxy = await startProxy({
    env: { BOT_KEY: KEY, KEYWAY_AGENT_KEY: KEY },
    config: {
      proxy: { max_body_swap: '4KiB' },
      agents: { bot: { key: 'env:BOT_KEY', grants: ['slack', 'slack-admin', 'slack-fields'] } },
    },
    grants: [
      { id: 'slack', type: 'api_key', domains: ['api.example.test'], secret: SECRET, inject: { body: true } },
      { id: 'slack-admin', type: 'bearer', domains: ['other.example.test'], secret: OTHER_SECRET, inject: { body: true } },
      // The hardened form: only the token field, so the agent cannot have the secret posted as a message.
      { id: 'slack-fields', type: 'api_key', domains: ['slow.example.test'], secret: SECRET, inject: { body: { fields: ['token'] } } },
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

describe('a form post (Slack style)', () => {
  it('curl --data-urlencode: the token field becomes the secret; the echo comes back redacted', async () => {
    const r = await curl(
      ['-H', 'x-tag: curl-form', '--data-urlencode', `token=${SLACK}`, '--data-urlencode', 'text=1+1 = 2 & more', `${api()}/curl-form`],
      agentEnv(),
    );
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout) as { ok: boolean; echo: string };
    expect(answer.ok).toBe(true);
    // The upstream got the secret, encoded so it decodes to itself, and the other field as sent.
    const seen = new URLSearchParams(bodies.get('curl-form')!);
    expect(seen.get('token')).toBe(SECRET);
    expect(seen.get('text')).toBe('1+1 = 2 & more');
    expect(answer.echo).toContain(REDACTED);
    expect(await auditFor('curl-form')).toMatchObject({ decision: 'inject', grant: 'slack', body_swap: 'swapped', status: 200 });
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it('a grant that names its fields swaps only there: the placeholder in a message text goes as written', async () => {
    const r = await curl(
      [
        '-H',
        'x-tag: fields-form',
        '--data-urlencode',
        'token=keyway-placeholder-slack-fields',
        '--data-urlencode',
        'text=keyway-placeholder-slack-fields',
        `https://slow.example.test:${upstream.port}/fields-form`,
      ],
      agentEnv(),
    );
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { ok: boolean }).ok).toBe(true);
    const seen = new URLSearchParams(bodies.get('fields-form')!);
    expect(seen.get('token')).toBe(SECRET);
    expect(seen.get('text')).toBe('keyway-placeholder-slack-fields');
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it('Python requests data=: the same, with + and %2B mixed in the other fields', async () => {
    const python = await findPythonWithRequests();
    if (python === undefined) throw new Error('python3 with requests is needed for this test');
    const script = `
import json, sys, requests
r = requests.post(sys.argv[1], data={'token': sys.argv[2], 'text': 'a+b%2Bc d'}, headers={'x-tag': 'py-form'}, timeout=10)
print(json.dumps({'status': r.status_code, 'body': r.text}))
`;
    const r = await runProcess(python, ['-c', script, `${api()}/py-form`, SLACK], agentEnv(), undefined, 20_000);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { status: number; body: string };
    expect(out.status).toBe(200);
    const raw = bodies.get('py-form')!;
    // The field keyway did not touch goes on byte for byte as requests encoded it.
    expect(raw).toContain('text=a%2Bb%252Bc+d');
    expect(new URLSearchParams(raw).get('token')).toBe(SECRET);
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it('the upstream refuses a wrong token: another grant\u2019s placeholder is sent as written, never that grant\u2019s secret', async () => {
    const r = await curl(['-H', 'x-tag: wrong-grant', '--data-urlencode', `token=${ADMIN}`, `${api()}/wrong-grant`], agentEnv());
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: 'invalid_auth' });
    expect(new URLSearchParams(bodies.get('wrong-grant')!).get('token')).toBe(ADMIN);
    expect(bodies.get('wrong-grant')).not.toContain(OTHER_SECRET);
    expect(await auditFor('wrong-grant')).toMatchObject({ body_swap: 'none', status: 401 });
  });
});

/** Node's own fetch in a child process; the body is sent in the pieces given, `gapMs` apart (chunked). */
function nodePost(url: string, type: string, pieces: string[], gapMs = 0): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `
    const pieces = ${JSON.stringify(pieces)};
    const body = pieces.length === 1 ? pieces[0] : new ReadableStream({
      async start(c) { for (const p of pieces) { c.enqueue(new TextEncoder().encode(p)); await new Promise((r) => setTimeout(r, ${gapMs})); } c.close(); },
    });
    fetch(${JSON.stringify(url)}, { method: 'POST', body, duplex: 'half', headers: { 'content-type': ${JSON.stringify(type)}, 'x-tag': new URL(${JSON.stringify(url)}).pathname.slice(1) }, signal: AbortSignal.timeout(10000) })
      .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))
      .catch((e) => { console.error('fetch failed:', e?.cause?.code ?? e?.message); process.exit(1); });
  `;
  const env = cleanEnv({ HTTPS_PROXY: proxyUrl(), NODE_USE_ENV_PROXY: '1', NODE_EXTRA_CA_CERTS: proxy.caPath });
  return runProcess(process.execPath, ['-e', script], env, undefined, 20_000);
}

describe('a JSON body (Node fetch)', () => {
  it('swaps a whole string value, escaped as JSON needs; keys and other grants stay', async () => {
    const body = JSON.stringify({ method: 'chat', params: { token: SLACK, note: `see ${ADMIN}` }, [SLACK]: 1 });
    const r = await nodePost(`${api()}/json`, 'application/json', [body]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 200 });
    const seen = JSON.parse(bodies.get('json')!) as { params: { token: string; note: string } } & Record<string, unknown>;
    expect(seen.params.token).toBe(SECRET);
    expect(seen.params.note).toBe(`see ${ADMIN}`);
    expect(seen[SLACK]).toBe(1);
    expect((JSON.parse(JSON.parse(r.stdout).body as string) as { echo: string }).echo).toContain(REDACTED);
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it('matches the placeholder escaped (\\u002d), split across chunks sent apart, and sends the held body with a length', async () => {
    const body = '{"params":{"token":"keyway\\u002dplaceholder-slack"}}';
    const cut = body.indexOf('place') + 2;
    const r = await nodePost(`${api()}/json-split`, 'application/json', [body.slice(0, cut), body.slice(cut)], 100);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 200 });
    expect(JSON.parse(bodies.get('json-split')!)).toEqual({ params: { token: SECRET } });
    expect(upstream.seen.find((s) => s.url === '/json-split')?.headers['content-length']).toBe(String(Buffer.byteLength(bodies.get('json-split')!)));
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it('passes a body that is not valid JSON unswapped, and says so', async () => {
    const r = await nodePost(`${api()}/not-json`, 'application/json', [`{"params":{"token":"${SLACK}"}`]);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 401 });
    expect(bodies.get('not-json')).toBe(`{"params":{"token":"${SLACK}"}`);
    expect((await auditFor('not-json'))['body_swap']).toBe('not_parsed');
  });

  it('passes a body over proxy.max_body_swap unswapped, and says so', async () => {
    const body = JSON.stringify({ params: { token: SLACK }, pad: 'x'.repeat(5000) });
    const r = await nodePost(`${api()}/too-large`, 'application/json', [body]);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 401 });
    expect(bodies.get('too-large')).toBe(body);
    expect((await auditFor('too-large'))['body_swap']).toBe('too_large');
  });
});

describe('where nothing is swapped', () => {
  it('a compressed (Content-Encoding) body goes on as it came, and the audit says not_parsed', async () => {
    const file = join(proxy.home, 'body.gz');
    writeFileSync(file, gzipSync(`{"params":{"token":"${SLACK}"}}`));
    const r = await curl(
      ['-H', 'x-tag: gzipped', '-H', 'content-type: application/json', '-H', 'content-encoding: gzip', '--data-binary', `@${file}`, `${api()}/gzipped`],
      agentEnv(),
    );
    expect(r.code).toBe(0);
    expect((await auditFor('gzipped'))['body_swap']).toBe('not_parsed');
  });

  it('a body in a charset keyway does not read as UTF-8 goes on unswapped, and the audit says not_parsed', async () => {
    // UTF-7 or UTF-16: the server would decode the secret's bytes into other text (an echo in UTF-8
    // hands it back in a form the leak guard does not look for), or find it in a field keyway never saw.
    for (const [tag, type] of [
      ['utf-7', 'application/x-www-form-urlencoded; charset=utf-7'],
      ['utf-16', 'text/plain; charset=utf-16'],
      ['charset-twice', 'application/json; charset=utf-8; charset=utf-7'],
    ] as const) {
      const body = type.startsWith('application/json') ? `{"params":{"token":"${SLACK}"}}` : type.startsWith('text/') ? `token: ${SLACK}` : `token=${SLACK}`;
      const r = await curl(['-H', `x-tag: ${tag}`, '-H', `content-type: ${type}`, '--data-binary', body, `${api()}/${tag}`], agentEnv());
      expect(r.code).toBe(0);
      expect(bodies.get(tag)).toBe(body);
      expect((await auditFor(tag))['body_swap']).toBe('not_parsed');
    }
  });

  it('a text body to a tunnelled host keeps the placeholder (keyway never sees it)', async () => {
    const ca = join(proxy.home, 'upstream-ca.pem');
    writeFileSync(ca, TLS_FIXTURES.ca);
    const r = await curl(
      [
        '--cacert',
        ca,
        '-H',
        'x-tag: tunnel',
        '-H',
        'content-type: text/plain',
        '--data-binary',
        `token: ${SLACK}`,
        `https://tunnel.example.test:${upstream.port}/tunnel`,
      ],
      cleanEnv({ HTTPS_PROXY: proxyUrl() }),
    );
    expect(r.code).toBe(0);
    expect(bodies.get('tunnel')).toBe(`token: ${SLACK}`);
  });

  it('a text body to the grant\u2019s host is swapped; a placeholder in a header or the URL is not', async () => {
    const r = await curl(
      ['-H', 'x-tag: text', '-H', `x-note: ${SLACK}`, '-H', 'content-type: text/plain', '--data-binary', `token: ${SLACK}`, `${api()}/text?q=${SLACK}`],
      agentEnv(),
    );
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
    const seen = upstream.seen.find((s) => s.url.startsWith('/text'))!;
    expect(seen.headers['x-note']).toBe(SLACK);
    expect(seen.url).toBe(`/text?q=${SLACK}`);
    expect(bodies.get('text')).toBe(`token: ${SECRET}`);
  });
});

describe('keyway env', () => {
  it("prints each body-injecting grant's placeholder", async () => {
    const r = await proxy.cli(['env', '--agent', 'bot', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ KEYWAY_PLACEHOLDER_SLACK: SLACK, KEYWAY_PLACEHOLDER_SLACK_ADMIN: ADMIN });
    expect(r.stdout).not.toContain(CANARY);
  });

  it('grants add --body makes a body-only grant; env prints its placeholder too', async () => {
    const added = await proxy.cli(
      ['grants', 'add', 'form-only', '--type', 'api_key', '--domains', 'plain.example.test', '--body', '--secret-stdin'],
      'kw-form-only-secret',
    );
    expect(added.code).toBe(0);
    const shown = await proxy.cli(['grants', 'show', 'form-only', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ inject: 'body: keyway-placeholder-<grant id> replaced by the secret' });
    const env = await proxy.cli(['env', '--json']);
    expect(JSON.parse(env.stdout)).toMatchObject({ KEYWAY_PLACEHOLDER_FORM_ONLY: 'keyway-placeholder-form-only' });
    const basic = await proxy.cli(['grants', 'add', 'b', '--type', 'basic', '--domains', 'plain.example.test', '--body']);
    expect(basic.code).not.toBe(0);
    expect(basic.stderr).toContain('not one secret to put in a body');
  });

  it('leaves the canary out of every log and audit line', () => {
    expect(canaryLeaks(proxy)).toEqual([]);
  });
});
