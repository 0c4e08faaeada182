// The first process inside `keyway run --contain`'s namespaces (a user namespace, so that nothing
// here holds a capability over the host's namespaces; a network namespace with nothing but loopback;
// a mount namespace). It makes keyway the only way out, hands keyway the listening socket every TCP
// connection is redirected to, answers DNS, and runs the command. Run by contain/run.ts under
// `unshare`; it talks to it over Node's IPC channel. Imports nothing of keyway's: it is a small,
// separate program, and what it does is all in this file.
import { execFileSync, spawn } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import dnsPacket from 'dns-packet';

export interface ContainSpec {
  command: string[];
  env: Record<string, string>;
  /** System CAs and keyway's: mounted over the system bundle paths, so clients trust keyway with no setting. */
  bundle: string;
}

/** Where every name resolves inside: an address of the benchmarking range (RFC 2544), reached only by the redirect. */
export const CONTAINED_ADDRESS = '198.18.0.1';
// Where programs look for the system's CA bundle (Debian and Ubuntu, Fedora and RHEL, Alpine and others).
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

function fail(reason: string): never {
  process.send?.({ kind: 'failed', reason });
  process.exit(2);
}

function run(command: string, args: string[], input?: string): void {
  try {
    execFileSync(command, args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '')
      .trim()
      .split('\n')[0];
    fail(`${command} ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/** The rules: UDP 53 to the DNS answerer, every other TCP connection to keyway; loopback stays; the rest leads nowhere. */
function rules(tcpPort: number, dnsPort: number): string {
  return `table inet keyway {
  chain to_keyway {
    type nat hook output priority -100; policy accept;
    meta nfproto ipv4 udp dport 53 redirect to :${dnsPort}
    ip daddr 127.0.0.0/8 return
    meta nfproto ipv4 meta l4proto tcp redirect to :${tcpPort}
  }
  chain leave {
    type filter hook output priority 0; policy drop;
    ip daddr 127.0.0.0/8 accept
    ip6 daddr ::1 accept
    meta l4proto tcp reject with tcp reset
  }
}
`;
}

/** Every A question answered with CONTAINED_ADDRESS; anything else (AAAA too) with no answer, so clients use IPv4. */
function answerDns(dns: ReturnType<typeof createSocket>, message: Buffer, from: RemoteInfo): void {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return;
  }
  const answers = (query.questions ?? [])
    .filter((q) => q.type === 'A')
    .map((q) => ({ type: 'A' as const, name: q.name, ttl: 5, class: 'IN' as const, data: CONTAINED_ADDRESS }));
  const reply = dnsPacket.encode({
    id: query.id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: query.questions,
    answers,
  });
  dns.send(reply, from.port, from.address);
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['KEYWAY_CONTAIN'] ?? 'null') as ContainSpec | null;
  if (!spec || !process.send) fail('run by keyway run --contain only');
  run('ip', ['link', 'set', 'lo', 'up']);
  // Every address routes to loopback, where only the redirect makes it go anywhere. With 127.0.0.1
  // as the source: with none (0.0.0.0), the kernel does not undo the redirect on the answers, and a
  // resolver drops an answer that comes from another address than it asked.
  run('ip', ['route', 'add', 'default', 'dev', 'lo', 'src', '127.0.0.1']);
  const tcp = createServer();
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const dns = createSocket('udp4');
  dns.bind(0, '127.0.0.1');
  await once(dns, 'listening');
  dns.on('message', (message, from) => answerDns(dns, message, from));
  const tcpPort = (tcp.address() as { port: number }).port;
  run('nft', ['-f', '-'], rules(tcpPort, dns.address().port));
  for (const path of SYSTEM_BUNDLES) if (existsSync(path)) run('mount', ['--bind', spec.bundle, path]);
  // keyway takes the listening socket; this process keeps no copy that could accept.
  await new Promise<void>((resolve) => process.send!({ kind: 'listening' }, tcp, () => resolve()));
  tcp.close();
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  const child = spawn(spec.command[0]!, spec.command.slice(1), { stdio: 'inherit', env: spec.env });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.once('error', (err) => fail(`cannot run ${spec.command[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
  child.once('exit', (code, signal) => {
    process.disconnect?.();
    process.exit(code ?? (signal ? 128 : 1));
  });
}

void main();
