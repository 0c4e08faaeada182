// The README's "Try it on a local API", followed as written (issue 36, item 3): its config block,
// with this test's port and CA, and `keyway run -- curl https://api.local.test:PORT/` gets the token
// injected. The first try a newcomer makes, https://localhost:PORT, goes around keyway (keyway env's
// NO_PROXY): run, fetch and doctor now say so instead of letting it pass in silence.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { docsSection } from '../helpers/docs.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';

const TOKEN = `${CANARY}-local`;

/** The yaml block of the README's section "Try it on a local API". */
function recipeBlock(): string {
  const section = docsSection('Try it on a local API');
  expect(section).toBeDefined();
  return /```yaml\n([\s\S]*?)```/.exec(section!)![1]!;
}

describe("the README's local API recipe", () => {
  let api: Server;
  let port: number;
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;
  const seen: Array<{ authorization: string | undefined }> = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    // A local API with a certificate for the recipe's name, from this test's CA.
    api = createServer(mintTestLeaf(['api.local.test']), (req, res) => {
      seen.push({ authorization: req.headers.authorization });
      res.end(req.headers.authorization === `Bearer ${TOKEN}` ? 'hello, token holder' : 'who are you?');
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    port = (api.address() as AddressInfo).port;
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    // The block as written, but for what is the reader's own: the API's port and its CA file.
    const text = recipeBlock().replaceAll('8443', String(port)).replace('/path/to/api-ca.pem', TLS_FIXTURES.caPath);
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(parse(text)));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), LOCAL_API_TOKEN: TOKEN });
    proxy = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    await proxy?.stop();
    api?.close();
    for (const text of [...outputs, proxy.stdout(), proxy.stderr()]) expect(findLeak(text, TOKEN)).toBeUndefined();
  });

  const cli = async (args: string[]) => {
    // --home before a `--`: what follows it is the command's.
    const r = await runCli([args[0]!, '--home', home, ...args.slice(1)], env);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  it('keyway run -- curl https://api.local.test:PORT/ gets the token injected', async () => {
    const r = await cli(['run', '--', 'curl', '-sS', `https://api.local.test:${port}/`]);
    expect(r.stdout, r.stderr).toBe('hello, token holder');
    expect(r.stderr).not.toContain('NO_PROXY');
  });

  it('keyway run -- curl https://localhost:PORT/ says it goes around keyway, and it does', async () => {
    const before = seen.length;
    const r = await cli(['run', '--', 'curl', '-sS', `https://localhost:${port}/`]);
    expect(r.stderr).toContain(`https://localhost:${port} is in NO_PROXY (localhost,127.0.0.1,::1), so the client goes straight there, not through keyway`);
    expect(r.stderr).toContain('Try it on a local API');
    // What the warning says: curl went straight to the API, without keyway: its handshake fails
    // (the bundle holds keyway's CA, not the API's) and, had it not, no credential would be on it.
    expect(r.stdout).not.toContain('token holder');
    expect(r.stderr).toMatch(/curl: \(60\)/);
    expect(seen.slice(before).every((s) => s.authorization === undefined)).toBe(true);
  });

  it('keyway fetch and keyway doctor --url name the same trap', async () => {
    const fetched = await cli(['fetch', `https://localhost:${port}/`]);
    expect(fetched.stderr).toContain('localhost is in the NO_PROXY that keyway env and keyway run set');
    const doctor = await cli(['doctor', '--url', `https://localhost:${port}/`]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout + doctor.stderr).toMatch(/clients send localhost through keyway.*FAIL|FAIL.*clients send localhost through keyway/);
  });
});
