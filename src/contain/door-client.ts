import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type DoorHeader, encodeDoorLine } from '../app/contain-door.ts';
import type { AuditEvent } from '../audit/index.ts';
import type { FromPrimary } from '../app/workers/messages.ts';
import { RemoteRates } from '../app/workers/shared-rates.ts';
import type { RequestTally } from '../observability/counting-audit.ts';

// keyway run --contain's side of the running keyway's contain door (app/contain-door.ts): the
// secrets its keyway was started with, its rate buckets, the start line of a run with host sockets.

const ANSWER_MS = 5_000;

export interface Door {
  /** The values of `names` the running keyway may hand on ({} for those it has not). */
  secrets(names: readonly string[]): Promise<Record<string, string>>;
  /**
   * Joins the running keyway: a rate counter that takes from its buckets, and a refusal hand-over
   * into its refusal budget (false once it is gone: the run's keyway then writes the line); close()
   * when the run ends.
   */
  join(): Promise<{ counter: RemoteRates; refusals: (event: AuditEvent) => boolean; tally: (event: AuditEvent) => void; close(): void }>;
  /** The audit line of a run that may reach host Unix sockets, written by the running keyway. */
  auditContainStart(agent: string | undefined, sockets: readonly string[]): Promise<void>;
}

/** The door at `path`, or undefined when nothing answers there (the keyway stopped, a stale record). */
export async function openDoor(path: string): Promise<Door | undefined> {
  const probe = connect({ path });
  try {
    await once(probe, 'connect');
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
  return {
    async secrets(names) {
      const answer = await ask(path, { v: 1, kind: 'secrets', names: [...names] });
      const values = JSON.parse(answer) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'));
    },
    async join() {
      const socket = connect({ path });
      await once(socket, 'connect');
      socket.write(encodeDoorLine({ v: 1, kind: 'join' } satisfies DoorHeader));
      const counter = new RemoteRates((message) => socket.write(encodeDoorLine(message)));
      socket.setEncoding('utf8');
      let pending = '';
      socket.on('data', (chunk: string) => {
        pending += chunk;
        for (let at = pending.indexOf('\n'); at !== -1; at = pending.indexOf('\n')) {
          counter.answer(JSON.parse(pending.slice(0, at)) as Extract<FromPrimary, { t: 'verdict' }>);
          pending = pending.slice(at + 1);
        }
      });
      // The running keyway stopped: every rate question from now on is refused, never let through uncounted.
      socket.on('close', () => counter.primaryGone());
      socket.on('error', () => socket.destroy());
      const refusals = (event: AuditEvent) => {
        if (socket.destroyed) return false;
        socket.write(encodeDoorLine({ t: 'refusal', event }));
        return true;
      };
      const tallies = new TallyBuffer((counts) => {
        if (!socket.destroyed) socket.write(encodeDoorLine({ t: 'tally', counts }));
      });
      return {
        counter,
        refusals,
        tally: (event) => tallies.add(event),
        close: () => {
          tallies.flush();
          socket.end();
        },
      };
    },
    async auditContainStart(agent, sockets) {
      const answer = await ask(path, { v: 1, kind: 'start', agent: agent ?? null, sockets: [...sockets] });
      if (answer !== 'ok') throw new Error('the running keyway did not write the start line');
    },
  };
}

/**
 * The requests this run's keyway served, counted by kind and minute and handed to the running
 * keyway once a second (and at the end): its overview and `keyway status` then count the contained
 * agent's traffic, at one write a second however busy the agent is.
 */
class TallyBuffer {
  readonly #send: (counts: RequestTally[]) => void;
  readonly #pending = new Map<string, RequestTally>();
  #timer: NodeJS.Timeout | undefined;

  constructor(send: (counts: RequestTally[]) => void) {
    this.#send = send;
  }

  add(event: AuditEvent): void {
    const decision = event.decision;
    if (decision !== 'inject' && decision !== 'tunnel' && decision !== 'deny' && decision !== 'error') return;
    const minuteMs = Math.floor(Date.now() / 60_000) * 60_000;
    const key = `${minuteMs}|${decision}|${event.code ?? ''}|${event.refreshed}`;
    const known = this.#pending.get(key);
    if (known !== undefined) known.n++;
    else this.#pending.set(key, { minuteMs, decision, code: event.code, refreshed: event.refreshed, n: 1 });
    this.#timer ??= setTimeout(() => this.flush(), 1_000).unref();
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const counts = [...this.#pending.values()];
    this.#pending.clear();
    for (let at = 0; at < counts.length; at += 64) this.#send(counts.slice(at, at + 64));
  }
}

/** One question, one answer line. */
async function ask(path: string, header: DoorHeader): Promise<string> {
  const socket: Socket = connect({ path });
  socket.setTimeout(ANSWER_MS, () => socket.destroy(new Error('the running keyway did not answer')));
  socket.write(encodeDoorLine(header));
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  await once(socket, 'end');
  socket.destroy();
  return answer.trim();
}
