// The sidecar's rules and port 53. Issue 47: the rules let TCP and UDP to port 53 of any address
// out, so an agent sent what it liked to a server of its own there. Issue 58: with DNS let out to
// the pod's own resolvers only, those resolvers still relayed whatever names the agent asked (a DNS
// tunnel past keyway). Now every DNS question of the agent's, to any address, is redirected to
// keyway's answerer (proxy.transparent.dns_listen), and no name leaves the pod. In a pod network
// this test makes (two namespaces, see pod-network.ts), the rules applied by each manifest's own
// rules container, keyway's answerer running as keyway's uid: an agent (the manifest's uid) sends a
// datagram and a connection to port 53 of the resolver and of other addresses, IPv4 and IPv6, and
// nothing arrives outside; a real lookup through its libc is answered by keyway, and the resolver
// hears nothing of it. keyway's uid still goes anywhere, which also shows the listeners outside
// would have seen the agent's traffic had it left. Needs root.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeRules, kubernetesRules } from '../helpers/deploy-scenarios.ts';
import { applyRules, createPodNetwork, type PodNetwork } from '../helpers/pod-network.ts';
import { runnableFile, runnableKeyway } from '../helpers/runnable-copy.ts';
import { waitFor } from '../helpers/wait.ts';

const LISTENER = fileURLToPath(new URL('./fixtures/port53-listener.ts', import.meta.url));
const PLACEHOLDER = '198.18.0.1';
const PROBE = fileURLToPath(new URL('./fixtures/port53-probe.ts', import.meta.url));
// The pod's resolvers, and servers on port 53 it was never told about: all outside the pod.
const RESOLVER = { v4: '10.253.0.53', v6: 'fd00:253::53' };
const ELSEWHERE = { v4: '10.253.0.54', v6: 'fd00:253::54' };
const ANSWER = '10.253.0.77';

interface Seen {
  proto: 'udp' | 'tcp';
  to: string;
  text: string;
  dns?: boolean;
}
type Probed = Record<string, { udp: string; tcp: string }>;

describe.each([
  ['kubernetes', kubernetesRules],
  ['compose', composeRules],
] as const)('the sidecar rules of deploy/%s and port 53', (kind, describeRules) => {
  const rules = describeRules();
  let network: PodNetwork;
  let listener: ChildProcess;
  let answerer: ChildProcess;
  const seen: Seen[] = [];

  beforeAll(async () => {
    network = createPodNetwork(`dns-${kind.slice(0, 4)}`, {
      hosts: '127.0.0.1 localhost\n',
      resolvConf: `nameserver ${RESOLVER.v4}\nnameserver ${RESOLVER.v6}\n`,
      outsideAddresses: [RESOLVER.v4, RESOLVER.v6, ELSEWHERE.v4, ELSEWHERE.v6],
    });
    applyRules(network, rules);
    listener = network.spawnOutside([process.execPath, LISTENER, RESOLVER.v4, RESOLVER.v6, ELSEWHERE.v4, ELSEWHERE.v6], { ANSWER });
    let listening = false;
    let partial = '';
    listener.stdout!.on('data', (c: Buffer) => {
      const lines = (partial + c.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        const entry = JSON.parse(line) as Seen & { listening?: boolean };
        if (entry.listening) listening = true;
        else seen.push(entry);
      }
    });
    let errors = '';
    listener.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
    await waitFor(() => listening || undefined, 'the listeners outside the pod', 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${errors}`);
    });
    // keyway's answerer, on the port the manifest's rules redirect DNS to, as keyway's uid.
    // The very module keyway runs for proxy.transparent.dns_listen, from a copy keyway's uid can read.
    const keyway = runnableKeyway();
    const module = join(keyway.root, 'dist', 'proxy', 'transparent', 'dns-answerer.js');
    const script = `const { startDnsAnswerer } = await import(${JSON.stringify(module)}); const a = await startDnsAnswerer({ host: '127.0.0.1', port: Number(process.env.DNS_PORT) }); console.log(JSON.stringify({ listening: a.port }));`;
    answerer = network.spawn(rules.keywayUid, [keyway.node, '--input-type=module', '-e', script], { DNS_PORT: rules.env['DNS_PORT'] ?? '' });
    let answering = false;
    let answererErrors = '';
    answerer.stdout!.on('data', (c: Buffer) => (answering ||= c.toString().includes('"listening"')));
    answerer.stderr!.on('data', (c: Buffer) => (answererErrors += c.toString()));
    await waitFor(() => answering || undefined, "keyway's DNS answerer in the pod", 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${answererErrors}`);
    });
  });

  afterAll(() => {
    answerer?.kill('SIGTERM');
    listener?.kill('SIGTERM');
    network?.remove();
  });

  /** The probe, as `uid`, to port 53 of every address, each carrying `text`. */
  function probe(uid: number, text: string): Probed {
    // As `uid`: a node and a script that uid can read wherever this checkout is.
    const ran = network.run(uid, [runnableKeyway().node, runnableFile(PROBE), RESOLVER.v4, RESOLVER.v6, ELSEWHERE.v4, ELSEWHERE.v6], { TEXT: text });
    expect(ran.code, ran.stderr).toBe(0);
    return JSON.parse(ran.stdout) as Probed;
  }
  const arrived = (text: string, to: string) => seen.filter((s) => s.text === text && s.to === to).map((s) => s.proto);

  it("sends no byte of the agent's port 53 out of the pod: not to the resolver, not elsewhere, UDP or TCP, IPv4 or IPv6", async () => {
    expect(rules.env['DNS_PORT'], "the manifest names proxy.transparent.dns_listen's port").toMatch(/^\d+$/);
    const text = `agent-${kind}-exfil`;
    const probed = probe(rules.agentUid, text);
    await new Promise((r) => setTimeout(r, 300));
    for (const address of [RESOLVER.v4, RESOLVER.v6, ELSEWHERE.v4, ELSEWHERE.v6]) {
      // Nothing at all arrives, not even a connection with nothing sent on it (keyway's probe comes later).
      expect(
        seen.filter((s) => s.to === address),
        `${address} saw the agent's traffic`,
      ).toEqual([]);
      // Not a DNS message: keyway's answerer says nothing back; it never echoes.
      expect(probed[address]!.udp, address).not.toMatch(/^answered/);
      expect(probed[address]!.tcp, address).not.toBe('echoed');
    }
  });

  it("answers the agent's names in the pod, with the placeholder keyway routes: the resolver hears nothing", async () => {
    const before = seen.filter((s) => s.dns).length;
    const lookup = network.run(rules.agentUid, ['getent', 'ahostsv4', 'name.example.test']);
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(lookup.stdout.split('\n')[0]).toMatch(new RegExp(`^${PLACEHOLDER.replaceAll('.', '\\.')}\\s`));
    // A name that carries data, as a tunnel would, is answered the same and goes nowhere.
    const tunnel = network.run(rules.agentUid, ['getent', 'ahostsv4', `${Buffer.from('secret-token').toString('hex')}.tunnel.example.test`]);
    expect(tunnel.stdout.split('\n')[0]).toMatch(new RegExp(`^${PLACEHOLDER.replaceAll('.', '\\.')}\\s`));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.filter((s) => s.dns).length).toBe(before);
  });

  it("keyway's own lookups still go to the resolver of the pod's resolv.conf", async () => {
    const before = seen.filter((s) => s.dns && s.to === RESOLVER.v4).length;
    const lookup = network.run(rules.keywayUid, ['getent', 'ahostsv4', 'name.example.test']);
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(lookup.stdout.split('\n')[0]).toMatch(new RegExp(`^${ANSWER.replaceAll('.', '\\.')}\\s`));
    await waitFor(() => (seen.filter((s) => s.dns && s.to === RESOLVER.v4).length > before ? true : undefined), "the resolver's log of the query");
  });

  it("leaves keyway's own uid alone: it reaches port 53 anywhere, as the agent could not", async () => {
    const text = `keyway-${kind}-own`;
    const probed = probe(rules.keywayUid, text);
    for (const address of [ELSEWHERE.v4, ELSEWHERE.v6]) {
      expect(probed[address], address).toEqual({ udp: 'answered', tcp: 'echoed' });
      await waitFor(() => (arrived(text, address).length === 2 ? true : undefined), `keyway's traffic at ${address}`);
    }
  });
});
