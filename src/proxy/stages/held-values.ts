import type { CapturedToken } from '../../capture/core/captured.ts';
import { CAPTURED_PREFIX } from '../../capture/core/placeholder.ts';
import type { Credential } from '../../credentials/material.ts';
import type { CredentialStore } from '../../credentials/store/credential-store.ts';
import type { Held, HeldAgent } from '../contract.ts';
import { HeldNeedles } from '../leak-guard/held.ts';
import { secretNeedles } from '../leak-guard/needles.ts';

// The real values keyway holds that could reach an agent, for the leak guard to look for on every
// answer of its connections (leak-guard/held.ts), under every grant the agent may use: each token
// captured through it, from any agent's login (another agent's token, stored upstream by it, is
// read back by this one as easily as its own), read from the store so a capture, refresh or drop
// by any process is seen once the store reloads; and the credentials keyway put on requests under
// it (its secret, tokens refreshed, exchanged or minted), the last SERVED_PER_GRANT of each.
//
// An agent's needles are rebuilt when its values change: at once for a captured token (the store's
// generation moved), at most once a REBUILD_MS for served credentials, so a grant that mints a
// token per request does not rebuild on every one (the credential a request carries is searched
// by that request's own leak guard in any case).

const SERVED_PER_GRANT = 4;
const REBUILD_MS = 1000;

interface AgentHeld {
  generation: number;
  servedVersion: number;
  builtAt: number;
  signature: string;
  held: HeldNeedles | undefined;
}

export class HeldValues implements Held {
  readonly #store: Pick<CredentialStore, 'generation' | 'entries'>;
  /** Per grant, the needle arrays of the credentials last served (newest last). */
  readonly #served = new Map<string, Buffer[][]>();
  #servedVersion = 0;
  readonly #ids = new WeakMap<Buffer[], number>();
  #nextId = 1;
  #captured: { generation: number; byGrant: Map<string, string[]> } | undefined;
  readonly #agents = new Map<string, AgentHeld>();

  constructor(store: Pick<CredentialStore, 'generation' | 'entries'>) {
    this.#store = store;
  }

  /** A credential keyway put on a request under `grant` (a captured login's values are the store's, not noted here). */
  noteServed(grant: string, credential: Credential): void {
    if (credential.kind === 'captured' || credential.kind === 'none') return;
    const needles = secretNeedles(credential);
    if (needles.length === 0) return;
    const list = this.#served.get(grant) ?? [];
    if (list.includes(needles)) return;
    list.push(needles);
    if (list.length > SERVED_PER_GRANT) list.shift();
    this.#served.set(grant, list);
    if (!this.#ids.has(needles)) this.#ids.set(needles, this.#nextId++);
    this.#servedVersion++;
  }

  /** The agent's held needles, or undefined when keyway holds nothing for it. */
  forAgent(agent: HeldAgent, now = Date.now()): HeldNeedles | undefined {
    const generation = this.#store.generation;
    const known = this.#agents.get(agent.id);
    if (known !== undefined && known.generation === generation && (known.servedVersion === this.#servedVersion || now - known.builtAt < REBUILD_MS))
      return known.held;
    const captured = this.#capturedFor(agent, generation);
    const served: Buffer[][] = [];
    for (const [grant, list] of this.#served) if (agent.grants === undefined || agent.grants.has(grant)) served.push(...list);
    const signature = `${captured.join('\u0000')}\u0001${served.map((s) => this.#ids.get(s)).join(',')}`;
    if (known !== undefined && known.signature === signature) {
      Object.assign(known, { generation, servedVersion: this.#servedVersion, builtAt: now });
      return known.held;
    }
    const all = [...captured.flatMap((value) => secretNeedles({ kind: 'token', value })), ...served.flat()];
    const needles = [...new Set(all)];
    const held =
      needles.length === 0 ? undefined : new HeldNeedles(needles, captured.length > 0, captured.length === 0 && served.length === 1 ? served[0] : undefined);
    this.#agents.set(agent.id, { generation, servedVersion: this.#servedVersion, builtAt: now, signature, held });
    return held;
  }

  /** Every value captured under the agent's grants, as the store holds them now (one pass over the store per generation). */
  #capturedFor(agent: HeldAgent, generation: number): string[] {
    if (this.#captured?.generation !== generation) {
      const byGrant = new Map<string, string[]>();
      for (const [, record] of this.#store.entries<CapturedToken>(CAPTURED_PREFIX)) {
        const list = byGrant.get(record.grant) ?? [];
        list.push(record.value);
        byGrant.set(record.grant, list);
      }
      this.#captured = { generation, byGrant };
    }
    const values: string[] = [];
    for (const [grant, list] of this.#captured.byGrant) if (agent.grants === undefined || agent.grants.has(grant)) values.push(...list);
    return values.sort();
  }
}
