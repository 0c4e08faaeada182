import type { HeldNeedles, HeldScan } from './held.ts';
import { type RedactionStyle, SecretScanner } from './index.ts';

// One message's (or one body's) scan: the needles of the credential on its request first, then the
// real values keyway holds for the agent (leak-guard/held.ts) over what the first let out. In 'mask'
// style every byte in comes out, in order, by end(): a WebSocket frame's length still holds.

export class MessageScan {
  readonly #own: SecretScanner | undefined;
  readonly #held: HeldScan | undefined;

  constructor(needles: readonly Buffer[], held: HeldNeedles | undefined, style: RedactionStyle) {
    this.#own = needles.length > 0 ? new SecretScanner(needles, style) : undefined;
    this.#held = held?.scanner(style);
  }

  get redactions(): number {
    return (this.#own?.redactions ?? 0) + (this.#held?.redactions ?? 0);
  }

  /** What may go on now, in pieces. */
  scan(chunk: Buffer): Buffer[] {
    const own = this.#own === undefined ? [chunk] : this.#own.scan(chunk);
    const held = this.#held;
    if (held === undefined) return own;
    if (own.length === 1) return held.scan(own[0]!);
    return own.flatMap((piece) => held.scan(piece));
  }

  /** scan()'s pieces as one buffer. */
  push(chunk: Buffer): Buffer {
    const pieces = this.scan(chunk);
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /** The rest, at the end. */
  end(): Buffer {
    const rest = this.#own === undefined ? EMPTY : this.#own.end();
    const held = this.#held;
    if (held === undefined) return rest;
    return Buffer.concat([...(rest.length > 0 ? held.scan(rest) : []), held.end()]);
  }
}

const EMPTY = Buffer.alloc(0);
