// The sidecar's rules and port 53 (issue 47, the red team's finding): the rules used to let TCP and
// UDP to port 53 of any address out, for any uid, so an agent sent what it liked to a server of its
// own on port 53, past `unmatched: deny`, with no audit line. Now DNS leaves only for the pod's own
// resolvers (the nameserver lines of its /etc/resolv.conf). In a pod network this test makes (two
// namespaces, see pod-network.ts), the rules applied by each manifest's own rules container: an
// agent (the manifest's uid) sends a datagram and a connection to port 53 of addresses outside that
// are not the resolver, IPv4 and IPv6, and nothing arrives; the same to the resolvers gets out and
// back, and a real lookup through its libc is answered. keyway's uid still goes anywhere, which also
// shows the listeners there would have seen the agent's traffic had it left. Needs root.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeRules, kubernetesRules } from '../helpers/deploy-scenarios.ts';
import { applyRules, createPodNetwork, type PodNetwork } from '../helpers/pod-network.ts';
import { waitFor } from '../helpers/wait.ts';

const LISTENER = fileURLToPath(new URL('./fixtures/port53-listener.ts', import.meta.url));
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
  });

  afterAll(() => {
    listener?.kill('SIGTERM');
    network?.remove();
  });

  /** The probe, as `uid`, to port 53 of every address, each carrying `text`. */
  function probe(uid: number, text: string): Probed {
    const ran = network.run(uid, [process.execPath, PROBE, RESOLVER.v4, RESOLVER.v6, ELSEWHERE.v4, ELSEWHERE.v6], { TEXT: text });
    expect(ran.code, ran.stderr).toBe(0);
    return JSON.parse(ran.stdout) as Probed;
  }
  const arrived = (text: string, to: string) => seen.filter((s) => s.text === text && s.to === to).map((s) => s.proto);

  it("refuses the agent port 53 anywhere but the pod's resolvers: nothing arrives there, over UDP or TCP, IPv4 or IPv6", async () => {
    const text = `agent-${kind}-exfil`;
    const probed = probe(rules.agentUid, text);
    // What did get out (the resolvers echo it) has been logged: the log has caught up with the probe.
    await waitFor(() => (arrived(text, RESOLVER.v4).length === 2 ? true : undefined), "the resolver's log");
    await new Promise((r) => setTimeout(r, 300));
    for (const address of [ELSEWHERE.v4, ELSEWHERE.v6]) {
      // Nothing at all, not even a connection with nothing sent on it (keyway's probe comes later).
      expect(
        seen.filter((s) => s.to === address),
        `${address} saw the agent's traffic`,
      ).toEqual([]);
      expect(probed[address]!.udp, address).not.toMatch(/^answered/);
      // TCP is reset at once (or, where a reverse-path filter drops the reset, times out).
      expect(['ECONNREFUSED', 'timeout'], address).toContain(probed[address]!.tcp);
    }
    // The same probe to the resolvers went out and came back: the refusal above is the address's.
    for (const address of [RESOLVER.v4, RESOLVER.v6]) expect(probed[address], address).toEqual({ udp: 'answered', tcp: 'echoed' });
    // And the refusals counted where the rules refuse everything else.
    const leave = network.run(0, ['nft', 'list', 'chain', 'inet', 'keyway', 'leave']).stdout;
    expect(Number(/counter packets (\d+) bytes \d+ drop/.exec(leave)?.[1] ?? 0)).toBeGreaterThanOrEqual(2);
  });

  it("resolves the agent's names through the resolver of its resolv.conf", async () => {
    const before = seen.filter((s) => s.dns && s.to === RESOLVER.v4).length;
    const lookup = network.run(rules.agentUid, ['getent', 'ahostsv4', 'name.example.test']);
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
