// A keyway home with a Cedar policy in force, as the policy-as-code tests (issue 88) start it: the
// file in `policies/`, the folder 0700 and the file 0600 (keyway refuses a policy others may write),
// and, for the attack tests, the one proxy they all drive: grant github on api.example.test with a
// canary secret, agent claude with key claude-key. Curl through it reads back the status and
// keyway's error code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { curl } from './clients.ts';
import { CANARY } from './fixtures.ts';
import { cleanEnv, makeHome, startProxy, type TestProxy } from './keyway.ts';

/** A new home whose `policies/NAME` holds `policy`; returns the home and the file's path. */
export function homeWithPolicy(policy: string, name = 'main.cedar'): { home: string; file: string } {
  const home = makeHome();
  mkdirSync(join(home, 'policies'), { mode: 0o700 });
  const file = join(home, 'policies', name);
  writeFileSync(file, policy, { mode: 0o600 });
  return { home, file };
}

/** The attack tests' proxy: grant github (api.example.test, a canary secret), agent claude, `policy` in force. */
export function startCedarProxy(policy: string): Promise<TestProxy> {
  return startProxy({
    home: homeWithPolicy(policy).home,
    grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-github` }],
    env: { CLAUDE_KEY: 'claude-key' },
    config: { agents: { claude: { key: 'env:CLAUDE_KEY', grants: ['github'] } } },
  });
}

/** Curl as claude through `proxy` with `args` (the URL last): the status, and keyway's error code when it refused. Outputs go to `outputs` for the leak check. */
export async function curlAsClaude(proxy: TestProxy, args: string[], outputs: string[]): Promise<{ status: number; code: string | undefined }> {
  const r = await curl(['-x', `http://claude:claude-key@127.0.0.1:${proxy.port}`, '--cacert', proxy.bundlePath, '-w', '\n%{http_code}', ...args], cleanEnv());
  outputs.push(r.stdout, r.stderr);
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  const body = lines.join('\n');
  return { status, code: body.startsWith('{"error"') ? (JSON.parse(body).error as { code: string }).code : undefined };
}
