import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type DoorHeader, encodeDoorHeader } from '../proxy/transparent/contain-door.ts';
import type { RedirectedPort } from '../proxy/transparent/listener.ts';

// keyway run --contain's side of the contain door (proxy/transparent/contain-door.ts): each
// connection the contained command makes is accepted on the listeners inside.ts handed over, and
// relayed byte for byte to the running keyway's door behind a one-line header naming the agent and
// the port. The running keyway does the rest (routing, credentials, limits, the audit line).

/** What serves a contained command: the running keyway through its door, or a keyway of this process's own. */
export interface ContainedServer {
  acceptRedirected(handle: Server, agent: string | undefined, ports: RedirectedPort): void;
  auditContainStart(agent: string | undefined, sockets: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

const ANSWER_MS = 5_000;

/** A relay to the door at `path`, or undefined when nothing answers there (the keyway stopped, a stale record). */
export async function doorRelay(path: string): Promise<ContainedServer | undefined> {
  const probe = connect({ path });
  try {
    await once(probe, 'connect');
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
  const servers: Server[] = [];
  const open = new Set<Socket>();
  return {
    acceptRedirected(handle, agent, ports) {
      const header: DoorHeader = { v: 1, kind: 'connection', agent: agent ?? null, port: ports.port ?? null, served: [...ports.served] };
      const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => relay(client, path, header, open));
      server.listen(handle);
      servers.push(server);
    },
    async auditContainStart(agent, sockets) {
      const door = connect({ path });
      door.setTimeout(ANSWER_MS, () => door.destroy(new Error('the running keyway did not answer')));
      door.write(encodeDoorHeader({ v: 1, kind: 'start', agent: agent ?? null, sockets: [...sockets] }));
      let answer = '';
      door.on('data', (chunk: Buffer) => {
        answer += chunk.toString('utf8');
      });
      await once(door, 'end');
      door.destroy();
      if (answer !== 'ok\n') throw new Error('the running keyway did not write the start line');
    },
    async stop() {
      for (const server of servers) server.close();
      for (const socket of open) socket.destroy();
    },
  };
}

function relay(client: Socket, path: string, header: DoorHeader, open: Set<Socket>): void {
  const door = connect({ path, allowHalfOpen: true });
  open.add(client);
  open.add(door);
  const close = () => {
    client.destroy();
    door.destroy();
    open.delete(client);
    open.delete(door);
  };
  client.on('error', close);
  door.on('error', close);
  client.on('close', () => {
    open.delete(client);
    door.end();
  });
  door.on('close', () => {
    open.delete(door);
    client.end();
  });
  door.write(encodeDoorHeader(header));
  client.pipe(door);
  door.pipe(client);
  client.resume();
}
