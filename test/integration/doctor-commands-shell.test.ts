// `keyway doctor` on two things a newcomer met it silent about (issue 60): grants whose secret a
// command prints (`secret: {cmd: …}`), failing ones included, and a shell whose HTTPS_PROXY points
// somewhere that is not this keyway's proxy (its admin port, a port where nothing listens, another
// program). Real proxy, real commands, a real listener on loopback for "another program".
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';

interface Check {
  check: string;
  status: 'ok' | 'fail' | 'warn' | 'skip';
  detail: string;
  fix?: string;
}

const NODE = process.execPath;
const node = (script: string) => [NODE, '-e', script];

// Each grant's command, as the config names it: one that works, and one per way of failing.
const COMMANDS = {
  'cmd-ok': { type: 'bearer', secret: { cmd: node(`process.stdout.write(${JSON.stringify(CANARY)})`) } },
  // It prints the secret, then fails and repeats it on stderr: the reason is shown, the value never.
  'cmd-fails': {
    type: 'bearer',
    secret: {
      cmd: node(
        `process.stdout.write(${JSON.stringify(CANARY)}); process.stderr.write('not signed in: ' + ${JSON.stringify(CANARY)} + '\\n'); process.exit(3)`,
      ),
    },
  },
  'cmd-slow': { type: 'bearer', secret: { cmd: node('setTimeout(() => {}, 60000)'), timeout: '300ms' } },
  'cmd-shape': { type: 'basic', secret: { cmd: node(`process.stdout.write(${JSON.stringify(CANARY)})`) } },
  'cmd-missing': { type: 'bearer', secret: { cmd: ['keyway-no-such-program-60'] } },
};

let proxy: TestProxy;
let proxyPort: number;
let adminPort: number;

beforeAll(async () => {
  proxyPort = await freePort();
  adminPort = await freePort();
  proxy = await startProxy({
    config: {
      proxy: { listen: `127.0.0.1:${proxyPort}` },
      admin: { listen: `127.0.0.1:${adminPort}` },
      grants: Object.fromEntries(Object.entries(COMMANDS).map(([id, g], i) => [id, { ...g, domains: [`cmd${i}.example.test`] }])),
    },
  });
});

afterAll(async () => {
  await proxy?.stop();
});

async function doctor(extraEnv: Record<string, string> = {}): Promise<{ code: number; checks: Check[]; text: string }> {
  const r = await runCli(['doctor', '--json'], { KEYWAY_HOME: proxy.home, ...proxy.env, ...extraEnv });
  return { code: r.code, checks: (JSON.parse(r.stdout) as { checks: Check[] }).checks, text: r.stdout + r.stderr };
}

function named(checks: Check[], start: string): Check {
  const found = checks.filter((c) => c.check.startsWith(start));
  if (found.length !== 1) throw new Error(`expected one check starting "${start}" in ${JSON.stringify(checks.map((c) => c.check))}`);
  return found[0]!;
}

describe('keyway doctor on grants whose secret a command prints', () => {
  it('runs each as keyway would: says whether it gave a value and how long it took, or why not, never the value', async () => {
    const { code, checks, text } = await doctor();
    expect(named(checks, "grant cmd-ok's secret command")).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/printed a bearer secret in \d+ ?ms \(the value is not shown\)/),
    });
    const failing = named(checks, "grant cmd-fails's secret command");
    expect(failing).toMatchObject({ status: 'fail', detail: expect.stringContaining('exited with status 3: not signed in: [redacted]') });
    expect(failing.fix).toContain('grants.cmd-fails.secret');
    expect(named(checks, "grant cmd-slow's secret command")).toMatchObject({ status: 'fail', detail: expect.stringContaining('timed out after 300ms') });
    expect(named(checks, "grant cmd-shape's secret command")).toMatchObject({ status: 'fail', detail: expect.stringContaining('not a basic secret') });
    expect(named(checks, "grant cmd-missing's secret command")).toMatchObject({ status: 'fail', detail: expect.stringContaining('not found') });
    // Failing grants fail doctor; nothing any command printed is in what doctor says.
    expect(code).toBe(1);
    expect(text).not.toContain(CANARY);
  });
});

describe("keyway doctor on this shell's proxy variables", () => {
  let other: Server;
  let otherPort: number;
  beforeAll(async () => {
    // Some other program listening on loopback (it takes the connection and says nothing).
    other = createServer((socket) => socket.on('error', () => undefined));
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    otherPort = (other.address() as { port: number }).port;
  });
  afterAll(() => {
    other?.close();
  });

  const right = () => `http://127.0.0.1:${proxyPort}`;
  const check = "this shell's proxy variables";

  it("warns when HTTPS_PROXY points at keyway's admin port, naming the proxy's URL", async () => {
    const { checks } = await doctor({ HTTPS_PROXY: `http://127.0.0.1:${adminPort}` });
    const line = named(checks, check);
    expect(line.status).toBe('warn');
    expect(line.detail).toContain(`HTTPS_PROXY=http://127.0.0.1:${adminPort} is keyway's admin API, not its proxy`);
    expect(line.fix).toContain(right());
  });

  it('warns when it points at a port where nothing listens, or at another program, and hides credentials in it', async () => {
    const closed = await freePort();
    const { checks, text } = await doctor({ https_proxy: `http://ci:secret-key-60@127.0.0.1:${closed}`, HTTP_PROXY: `http://localhost:${otherPort}` });
    const line = named(checks, check);
    expect(line.status).toBe('warn');
    expect(line.detail).toContain(`https_proxy=http://127.0.0.1:${closed} (credentials not shown): nothing answers there`);
    expect(line.detail).toContain(`HTTP_PROXY=http://localhost:${otherPort}: something answers there, but not this keyway's proxy`);
    expect(line.fix).toContain(right());
    expect(text).not.toContain('secret-key-60');
  });

  it("is ok when every variable set points at this keyway's proxy, and says so when none is set", async () => {
    const good = await doctor({ HTTPS_PROXY: `http://agent:key@localhost:${proxyPort}`, http_proxy: right() });
    expect(named(good.checks, check)).toMatchObject({ status: 'ok', detail: expect.stringContaining(right()) });
    const none = await doctor();
    expect(named(none.checks, check)).toMatchObject({ status: 'skip', detail: expect.stringContaining('keyway run') });
  });

  it('warns on a value that is not a proxy URL keyway serves', async () => {
    const { checks } = await doctor({ HTTPS_PROXY: `https://127.0.0.1:${proxyPort}` });
    expect(named(checks, check)).toMatchObject({ status: 'warn', detail: expect.stringContaining("keyway's proxy speaks plain http://") });
    const garbled = await doctor({ HTTPS_PROXY: 'http://[::1' });
    expect(named(garbled.checks, check)).toMatchObject({ status: 'warn', detail: expect.stringContaining('HTTPS_PROXY is not a URL') });
  });
});

describe('keyway doctor on the proxy variables, with the proxy on every address (0.0.0.0)', () => {
  let wide: TestProxy;
  let widePort: number;
  beforeAll(async () => {
    // A port the kernel gives (its ephemeral range): this machine's network answers connections to
    // other addresses on lower ports, so a freePort() port could find "something" at 198.51.100.7.
    wide = await startProxy({ config: { proxy: { listen: '0.0.0.0:0' }, admin: { enabled: false } } });
    widePort = wide.port;
  });
  afterAll(async () => {
    await wide?.stop();
  });

  /** This machine's own address on a network, else its name. */
  const ownAddress = () =>
    Object.values(networkInterfaces())
      .flat()
      .find((i) => i?.family === 'IPv4' && !i.internal)?.address ?? hostname();

  it("takes an address of this machine as the proxy's, and warns on one that is not", async () => {
    const run = async (value: string) => {
      const r = await runCli(['doctor', '--json'], { KEYWAY_HOME: wide.home, ...wide.env, HTTPS_PROXY: value });
      return named((JSON.parse(r.stdout) as { checks: Check[] }).checks, "this shell's proxy variables");
    };
    expect(await run(`http://${ownAddress()}:${widePort}`)).toMatchObject({ status: 'ok' });
    // 198.51.100.0/24 is documentation space: no address of this machine, and nothing there.
    const elsewhere = await run(`http://198.51.100.7:${widePort}`);
    expect(elsewhere).toMatchObject({ status: 'warn', detail: expect.stringContaining(`HTTPS_PROXY=http://198.51.100.7:${widePort}: nothing answers there`) });
    expect(elsewhere.fix).toContain(`http://127.0.0.1:${widePort}`);
  });
});
