import type { AuditEvent } from '../audit/index.ts';
import { shownName } from './shown-name.ts';

// A contained command whose host keyway could not reach (no route, a name that does not resolve, a
// refused connection) is answered as well as its connection allows: a 502 upstream_unreachable
// inside TLS where keyway intercepts, a TLS alert where it tunnels blind (proxy/tls-alert.ts). The
// alert says nothing of the cause, and an agent may drop a 502's body, so the person who started
// `keyway run --contain` reads it on the run's stderr too: one line naming the host and the code,
// from the audit line (keyway's own words: no secret, no path, no query string). At most one line
// per host a minute, so an agent retrying in a loop does not fill the terminal: the next says how
// many came in between.

const QUIET_MS = 60_000;

export class UnreachableNotice {
  readonly #say: (line: string) => void;
  readonly #now: () => number;
  /** Per host:port: when its last line was said, and how many failures came since. */
  readonly #said = new Map<string, { at: number; since: number }>();

  constructor(say: (line: string) => void, now: () => number = Date.now) {
    this.#say = say;
    this.#now = now;
  }

  /** Told of every audit line the run's keyway writes (app/parts.ts: its counting audit). */
  add(event: AuditEvent): void {
    if (event.code !== 'upstream_unreachable' || event.phase === 'sent') return;
    const authority = `${event.host}:${event.port}`;
    const now = this.#now();
    const last = this.#said.get(authority);
    if (last !== undefined && now - last.at < QUIET_MS) {
      last.since++;
      return;
    }
    this.#said.set(authority, { at: now, since: 0 });
    this.#say(unreachableLine(authority, event.message ?? null, last?.since ?? 0));
  }
}

/** `keyway: upstream_unreachable: keyway could not reach HOST:PORT for the command: WHY`. */
export function unreachableLine(authority: string, message: string | null, since: number): string {
  // Most messages begin with the authority itself ("api.example.com:443: connection refused").
  const why = message?.startsWith(`${authority}: `) ? message.slice(authority.length + 2) : message;
  const more = since > 0 ? ` (${since} more since the last line)` : '';
  return `keyway: upstream_unreachable: keyway could not reach ${shownName(authority)} for the command${why ? `: ${shownName(why)}` : ''}${more}`;
}
