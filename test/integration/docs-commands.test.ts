// Every `sh` block of the README and docs/ either runs here, as written, in `bash -euo pipefail`, or is
// listed below with why it cannot (issue 48). A new block that is in neither list fails the first
// test, so no example goes untried by accident.
//
// The world the blocks run in is a reader's: a fresh $HOME with keyway's default home
// (~/.keyway), `keyway` on PATH as `npm install -g .` puts it (a link to dist/cli/main.js), and a
// keyway started there. What cannot be the reader's is the internet: api.github.com, slack.com and
// api.corp.example are one test server on port 443 of a loopback address of its own, reached
// through keyway's `proxy.hosts` and trusted through `proxy.upstream_ca`; it checks the credential
// each block means to send and refuses a wrong one. The only edits to a block are the ones in
// SUBSTITUTIONS, each for a value the docs mark as the reader's own.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { DOC_PAGES, README } from '../helpers/docs.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';

interface Block {
  where: string;
  text: string;
}

/** Every ```sh block, with the page and line it starts on. */
function shellBlocks(): Block[] {
  const pages: Array<[string, string]> = [['README.md', README], ...[...DOC_PAGES].map(([name, text]): [string, string] => [`docs/${name}`, text])];
  const blocks: Block[] = [];
  for (const [page, text] of pages) {
    for (const m of text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
      blocks.push({ where: `${page}:${text.slice(0, m.index).split('\n').length}`, text: m[1]! });
    }
  }
  return blocks;
}

/** A block is known by its first line, which says what it does; the same block on two pages is one entry. */
const firstLine = (text: string) => text.split('\n')[0]!.trim();

/** Blocks that cannot run on this machine, by first line, and why; each reason names where the same thing is tested. */
const NOT_RUN: Record<string, string> = {
  'sha256sum -c --ignore-missing SHA256SUMS   # each file you have: OK':
    'checks a downloaded release: .ci/run runs `sha256sum -c SHA256SUMS` on the release it builds',
  'install -m 0755 keyway-linux-x64 ~/.local/bin/keyway   # or /usr/local/bin, any folder on PATH':
    'needs a release: test/integration/single-executable.test.ts runs the executable (init, start, run --contain) with no node on PATH',
  'npm install -g ./keyway-proxy-0.1.0.tgz': 'installs globally: test/integration/packed-install.test.ts installs the packed tarball into a prefix of its own',
  'keyway agents delegate lead --name worker --grants github --ttl 30m':
    'needs an agent lead holding a github grant: the same command, with its refusals, is test/integration/delegation-curl.test.ts, over the admin API delegation-admin.test.ts',
  'keyway delegate --name worker --grants github --ttl 30m     # as agent lead, under keyway run':
    'needs an agent lead with two grants and runs claude: keyway delegate, delegate rm and run --delegate are test/integration/delegation-self-service.test.ts, the door itself delegation-door.test.ts',
  'npm install && npm install -g .   # in this checkout: build dist/, then put `keyway` on your PATH':
    'installs globally: this test puts the same link on PATH, and test/integration/old-node.test.ts runs it from another folder on Node 20',
  'npm install && npm start      # the same `keyway start`, built from this checkout': 'this is what CI itself runs (.ci/run: npm ci, then npm test)',
  '# Claude Code with its subscription login, owned by keyway (a keyway must be running: keyway start)':
    "runs Claude Code's browser login: connect --login with the agents' logins scripted against a loopback token endpoint is test/integration/connect-agent-login.test.ts",
  '# Claude Code, Codex and Gemini CLI: a built-in profile gives what each needs (keyway profiles show NAME)':
    'runs Claude Code, Codex, Gemini CLI and aider, interactive: --profile is tested in test/integration/profiles.test.ts, --allow-write in test/hostile/contain-reach.test.ts',
  'keyway secrets set aws --stdin <<< \'{"accessKeyId":"AKIA…","secretAccessKey":"…"}\'   # or the config\'s env:':
    'lists a real S3 bucket and imports a real ~/.aws profile: the aws CLI, boto3 and the AWS SDK through keyway against an S3 double are src/credentials/types/aws_sigv4/*.integration.test.ts, test/integration/aws-doubles.test.ts and s3-front.test.ts',
  'HTTPS_PROXY=http://127.0.0.1:8787 GIT_SSL_CAINFO=~/.keyway/certs/bundle.pem git clone https://github.com/acme/widgets':
    "clones from GitHub through a github_app grant (a GitHub App's key): git through keyway is test/integration/clients.test.ts, the App's tokens src/credentials/types/github_app/grant.integration.test.ts",
  'HTTPS_PROXY="http://jwt:$(cat /var/run/secrets/tokens/keyway)@keyway:8787" python agent.py':
    "a pod's names (the keyway service, a projected token) and the reader's agent.py: identity sign-in is test/integration/identities.test.ts",
  'eval "$(keyway env)"          # HTTPS_PROXY, and keyway\'s CA for gh and git':
    'logs in to github.com with gh, which is not installed here and would reach GitHub: login capture with real OAuth clients (openid-client, requests-oauthlib) against oidc-provider is test/integration/login-capture.test.ts and login-capture-agents.test.ts',
  'eval "$(keyway env --identity-token /var/run/secrets/tokens/keyway)"':
    "a pod's projected token and a CI runner's: --identity-token is tested in test/integration/identities.test.ts",
  'docker load -i keyway-image.tar                   # keyway-proxy:<version>':
    'needs Docker and a registry, neither here: test/integration/release-image.test.ts checks the archive with skopeo (docker-archive and oci-archive), unpacks it with umoci and runs its entry as uid 1000',
  'kubectl create secret generic keyway \\':
    "needs a cluster and helm, neither here: test/unit/helm-chart.test.ts checks the chart's templates against rendered/ and the manifests against the Kubernetes schemas",
};

/** The reader's own values, replaced by this test's: [page-independent text, what it becomes, why]. */
type Substitution = [string, (w: World) => string];
const SUBSTITUTIONS: Record<string, Substitution[]> = {
  // "the admin line of `keyway status`": the test's keyway listens on a port of its own.
  'TOKEN=$(cat "${KEYWAY_HOME:-$HOME/.keyway}/data/admin.token")': [['http://127.0.0.1:8788', (w) => w.adminUrl]],
  // "a copy of the logs", made by the test where the reader would have put it.
  "keyway audit public-key > keyway-audit.pem          # on the keyway's host (needs the master key)": [['/copy/of/logs', (w) => w.logsCopy]],
};

const GITHUB_TOKEN = `${CANARY}-docs-github`;
const SLACK_TOKEN = `${CANARY}-docs-slack`;
const PASSPHRASE = 'docs-passphrase-5c1e';

interface World {
  home: string;
  keywayHome: string;
  cwd: string;
  env: Record<string, string>;
  adminUrl: string;
  logsCopy: string;
}

interface Seen {
  host: string | undefined;
  path: string;
  authorization: string | undefined;
  body: string;
}

const outputs: string[] = [];

function bash(world: World, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd: world.cwd, env: world.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      outputs.push(stdout, stderr);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('the command blocks of the docs', () => {
  const blocks = shellBlocks();
  const ran = new Set<string>();
  let world: World;
  let keyway: ChildProxy;
  let api: Server;
  const seen: Seen[] = [];

  /** Runs the block whose first line is `first`, as written but for its SUBSTITUTIONS, after `prelude`. */
  async function runBlock(first: string, prelude = ''): Promise<{ code: number; stdout: string; stderr: string }> {
    const block = blocks.find((b) => firstLine(b.text) === first);
    expect(block, `no sh block starts with: ${first}`).toBeDefined();
    let text = block!.text;
    for (const [from, to] of SUBSTITUTIONS[first] ?? []) {
      expect(text).toContain(from);
      text = text.replaceAll(from, to(world));
    }
    ran.add(first);
    const result = await bash(world, `${prelude}\n${text}`);
    expect(result.code, `${block!.where}\n${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  }

  beforeAll(async () => {
    // The internet of the docs: one HTTPS server on port 443 of a loopback address no other test uses.
    const address = `127.${randomInt(64, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
    api = createServer(mintTestLeaf(['api.github.com', 'slack.com', 'api.corp.example']), (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ host: req.headers.host, path: req.url ?? '', authorization: req.headers.authorization, body });
        const url = new URL(req.url ?? '/', 'https://x');
        if (req.headers.host === 'api.github.com' && url.pathname === '/user') {
          const ok = req.headers.authorization === `Bearer ${GITHUB_TOKEN}`;
          return void res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"login":"octocat"}' : '{"message":"Bad credentials"}');
        }
        if (req.headers.host === 'slack.com' && url.pathname === '/api/chat.postMessage') {
          const ok = new URLSearchParams(body).get('token') === SLACK_TOKEN;
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(ok ? '{"ok":true}' : '{"ok":false,"error":"invalid_auth"}');
        }
        res.writeHead(404).end();
      });
    });
    api.listen(443, address);
    await once(api, 'listening');

    const home = mkdtempSync(join(tmpdir(), 'keyway-docs-home-'));
    const keywayHome = join(home, '.keyway');
    const bin = join(home, 'bin');
    const cwd = join(home, 'work');
    for (const dir of [join(keywayHome, 'config'), bin, cwd]) mkdirSync(dir, { recursive: true });
    symlinkSync(DIST_CLI, join(bin, 'keyway'));
    writeFileSync(
      join(keywayHome, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          hosts: { 'api.github.com': address, 'slack.com': address, 'api.corp.example': address },
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: [`${address}/32`],
        },
        // The form-body grant of docs/credentials.md's example, whose placeholder its curl sends.
        grants: {
          'slack-form': { type: 'api_key', domains: ['slack.com'], inject: { body: { fields: ['token'] } }, secret: 'env:SLACK_BOT_TOKEN' },
        },
      }),
    );
    const listeners = process.env['KEYWAY_LISTENERS_DIR'];
    const env: Record<string, string> = {
      HOME: home,
      PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      ...(listeners ? { KEYWAY_LISTENERS_DIR: listeners } : {}),
    };
    keyway = await startChildProxy({ cli: DIST_CLI, home: keywayHome, env: { ...env, SLACK_BOT_TOKEN: SLACK_TOKEN } });
    world = {
      home,
      keywayHome,
      cwd,
      // What the reader's shell holds when the blocks ask for it.
      env: { ...env, GITHUB_TOKEN, KEY_PASSPHRASE: PASSPHRASE, P12_PASSPHRASE: PASSPHRASE },
      adminUrl: '',
      logsCopy: join(home, 'logs-copy'),
    };
    // "the admin line of `keyway status`", as the reader would read it.
    const status = await bash(world, 'keyway status --json');
    expect(status.code, status.stderr).toBe(0);
    world.adminUrl = (JSON.parse(status.stdout) as { admin: string }).admin;
  });

  afterAll(async () => {
    await keyway?.stop();
    api?.close();
    for (const text of [...outputs, keyway?.stdout() ?? '', keyway?.stderr() ?? '']) {
      expect(findLeak(text, GITHUB_TOKEN)).toBeUndefined();
      expect(findLeak(text, SLACK_TOKEN)).toBeUndefined();
    }
  });

  it('are each run below or listed with the reason they cannot run here', () => {
    const runHere = new Set<string>(RUN_HERE);
    const unlisted = blocks.filter((b) => !runHere.has(firstLine(b.text)) && !(firstLine(b.text) in NOT_RUN)).map((b) => b.where);
    expect(unlisted).toEqual([]);
    const firsts = new Set(blocks.map((b) => firstLine(b.text)));
    expect([...RUN_HERE, ...Object.keys(NOT_RUN)].filter((f) => !firsts.has(f))).toEqual([]);
  });

  it('README, Point an agent at it: the grant, its secret, keyway env, curl gets the token injected, doctor passes', async () => {
    const result = await runBlock(RUN_HERE[0]);
    expect(result.stdout).toContain('"login":"octocat"');
    expect(seen.filter((s) => s.host === 'api.github.com').map((s) => s.authorization)).toEqual([`Bearer ${GITHUB_TOKEN}`]);
  });

  it('credentials, secrets in bodies: the placeholder keyway env gives goes out as the Slack token', async () => {
    const result = await runBlock(RUN_HERE[1], 'eval "$(keyway env)"');
    expect(result.stdout).toContain('"ok":true');
    expect(seen.find((s) => s.host === 'slack.com')?.body).toContain('channel=C123');
  });

  it('credentials, client certificates: a PEM pair with an encrypted key and a PKCS#12 bundle are stored', async () => {
    // The reader's files: a certificate and its key, encrypted with $KEY_PASSPHRASE, and the same as PKCS#12.
    const made = await bash(
      world,
      [
        'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 1 -subj /CN=docs-client -passout env:KEY_PASSPHRASE -keyout client-key.pem -out client.pem 2>/dev/null',
        'openssl pkcs12 -export -in client.pem -inkey client-key.pem -passin env:KEY_PASSPHRASE -passout env:P12_PASSPHRASE -out client.p12',
      ].join('\n'),
    );
    expect(made.code, made.stderr).toBe(0);
    await runBlock(RUN_HERE[2]);
    const listed = await bash(world, 'keyway grants list --json');
    const grants = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(JSON.stringify(grants.find((g) => g['id'] === 'corp'))).toMatch(/docs-client/);
    expect(JSON.stringify(grants.find((g) => g['id'] === 'github'))).toMatch(/docs-client/);
  });

  it('local API: the openssl line makes a certificate that names api.local.test', async () => {
    await runBlock(RUN_HERE[3]);
    const text = await bash(world, 'openssl x509 -in api-ca.pem -noout -ext subjectAltName');
    expect(text.stdout).toContain('DNS:api.local.test');
    expect(existsSync(join(world.cwd, 'api-key.pem'))).toBe(true);
  });

  it('operations, the admin API: the curl creates the grant', async () => {
    const result = await runBlock(RUN_HERE[4]);
    expect(JSON.parse(result.stdout)).toMatchObject({ grant: { id: 'openai' } });
    const listed = await bash(world, 'keyway grants list --json');
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((g) => g.id)).toContain('openai');
  });

  it('operations, behind a company proxy: the export line is valid shell', async () => {
    const result = await runBlock(RUN_HERE[5]);
    expect(result.stderr).toBe('');
  });

  it('README and containment: keyway run --contain --agent claude -- curl reaches the API with the token', async () => {
    const added = await bash(world, 'keyway agents add claude --grants github');
    expect(added.code, added.stderr).toBe(0);
    const before = seen.length;
    const result = await runBlock(RUN_HERE[6]);
    expect(result.stdout).toContain('"login":"octocat"');
    expect(seen.slice(before).map((s) => s.authorization)).toEqual([`Bearer ${GITHUB_TOKEN}`]);
  });

  it('audit, signed checkpoints: public key, verify a copy of the logs, export the last hour and verify the bundle', async () => {
    cpSync(join(world.keywayHome, 'logs'), world.logsCopy, { recursive: true });
    const result = await runBlock(RUN_HERE[7]);
    expect(result.stdout + result.stderr).toMatch(/verified|intact/);
  });

  it('ran every block it lists as runnable', () => {
    expect(RUN_HERE.filter((f) => !ran.has(f))).toEqual([]);
  });
});

/** The blocks this test runs, by first line, in the order the tests above run them. */
const RUN_HERE = [
  'keyway grants add github --type bearer --domains api.github.com',
  'curl https://slack.com/api/chat.postMessage --data-urlencode "token=$KEYWAY_PLACEHOLDER_SLACK_FORM" \\',
  'keyway grants add corp --type mtls --domains api.corp.example',
  'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=api.local.test \\',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, as the docs write it
  'TOKEN=$(cat "${KEYWAY_HOME:-$HOME/.keyway}/data/admin.token")',
  "export CORP_PROXY='http://svc-keyway:PASSWORD@proxy.corp.example:3128'",
  'keyway run --contain --agent claude -- curl https://api.github.com/user   # no -x, no --cacert',
  "keyway audit public-key > keyway-audit.pem          # on the keyway's host (needs the master key)",
] as const;
